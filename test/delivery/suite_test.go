// Package delivery proves progressive delivery end to end on the simulated
// cluster (internal/testcluster): kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok Nodes and the real Argo Rollouts controller, with a
// real VictoriaMetrics and the real judge (`platformctl judge serve`, built
// from this repository).
//
// kwok's pods run no process, so this package plays the kubelet for the
// ml-inference pods (fleet): for every running pod of the Rollout it starts
// one real ml-inference (internal/inferencetest, built with -tags
// faultinject) with the environment its pod template sets, serving on
// loopback, and writes its address on the pod. VictoriaMetrics discovers the
// pods from the API server with the repository's own vmagent scrape
// configuration (infrastructure/base/observability/vmagent/scrape.yaml: the
// same relabelling, so the same namespace, pod, app, env and
// rollouts_pod_template_hash labels), plus one rule that scrapes that
// address instead of the fake pod IP. It also plays the Service: requests are
// spread uniformly over the ready pods, as kube-proxy spreads them, so a
// step's weight is the canary's share of the pods, and a pod leaves the
// rotation as soon as it terminates (then its process drains, as on SIGTERM).
//
// The staging Rollout, its Services and the AnalysisTemplates are rendered
// from the repository (infrastructure/overlays/staging) and applied as they
// are, in one namespace per scenario, with only addresses (VictoriaMetrics,
// the judge) and durations (pauses, analysis intervals, windows; see scale)
// patched. A pod template asks for a fault with the test-only annotation
// faultAnnotation, which this package reads (never a manifest of the
// repository).
//
// The scenarios (canary_test.go) run in parallel on one cluster and print
// DELIVERY lines with what they measured (docs/performance.md).
package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/inferencetest"
	"github.com/ml-platform/platform/internal/mlflowtest"
	"github.com/ml-platform/platform/internal/proctest"
	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/testcluster"
	"github.com/ml-platform/platform/internal/vmtest"
)

// repoRoot is the repository, from this package's directory.
var repoRoot = filepath.Join("..", "..")

// apiClient reads the processes' HTTP APIs.
var apiClient = &http.Client{Timeout: 10 * time.Second}

func TestMain(m *testing.M) { os.Exit(inferencetest.Main(m)) }

// rolloutCRDDirs are the CRD directories among those make test exports
// (hack/tools.sh crds) that an environment's render needs: Argo Rollouts'
// (the Rollout, its AnalysisTemplates) and the Gateway API's (its
// HTTPRoute); the others would only slow the start.
func rolloutCRDDirs(t *testing.T) []string {
	t.Helper()
	dirs := slices.DeleteFunc(crdDirs(t), func(d string) bool {
		return !strings.Contains(d, "/argo-rollouts@") && !strings.Contains(d, "/envoyproxy/gateway@")
	})
	if !slices.ContainsFunc(dirs, func(d string) bool { return strings.Contains(d, "/argo-rollouts@") }) ||
		!slices.ContainsFunc(dirs, func(d string) bool { return strings.Contains(d, "/envoyproxy/gateway@") }) {
		t.Fatalf("PLATFORMCTL_CRD_DIRS=%s lacks the Argo Rollouts or the Gateway API CRDs (tools/crds/go.mod)", os.Getenv("PLATFORMCTL_CRD_DIRS"))
	}
	return dirs
}

func crdDirs(t *testing.T) []string {
	t.Helper()
	dirs := filepath.SplitList(os.Getenv("PLATFORMCTL_CRD_DIRS"))
	if len(dirs) == 0 {
		t.Fatal("PLATFORMCTL_CRD_DIRS is not set: run `make test`, or export PLATFORMCTL_CRD_DIRS=$(hack/tools.sh crds | paste -sd: -)")
	}
	return dirs
}

// moduleDir is the root of the module that holds a CRD directory of
// PLATFORMCTL_CRD_DIRS whose path contains module (e.g. "/argo-rollouts@").
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	for _, d := range crdDirs(t) {
		if i := strings.Index(d, module); i >= 0 {
			// The version follows the @; the module's root ends there.
			at := i + strings.IndexByte(d[i:], '@')
			end := strings.IndexByte(d[at:], '/')
			if end < 0 {
				return d
			}
			return d[:at+end]
		}
	}
	t.Fatalf("no module %q among PLATFORMCTL_CRD_DIRS=%s (tools/crds/go.mod)", module, os.Getenv("PLATFORMCTL_CRD_DIRS"))
	return ""
}

// freePort is a loopback port nothing listens on (for the judge, whose
// listening address is not logged in a form this package relies on).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// suite is everything the scenarios share: one simulated cluster, one
// VictoriaMetrics scraping every scenario's pods, one judge serving every
// scenario's namespace, and the ml-inference build the pods run.
type suite struct {
	cluster   *testcluster.Cluster
	vm        string // VictoriaMetrics' base URL
	judge     string // the judge's base URL
	inference string // the ml-inference (faultinject) binary
	mlflow    string // MLflow's URL: the registry the staging pods follow
	platform  string // the platformctl binary (judge, rollout commands)
	dir       string
	started   time.Time
	setup     time.Duration // to start all of the above
}

// startSuite starts the cluster, VictoriaMetrics and the judge for the
// given scenario namespaces.
func startSuite(t *testing.T, namespaces []string) *suite {
	t.Helper()
	s := &suite{dir: t.TempDir(), started: time.Now()}

	// Builds and the cluster at once: both take seconds.
	var wg sync.WaitGroup
	var buildErr [2]error
	wg.Go(func() { s.inference, buildErr[0] = inferencetest.Build("faultinject") })
	wg.Go(func() {
		s.platform = filepath.Join(s.dir, "platformctl")
		cmd := exec.Command("go", "build", "-o", s.platform, "./cmd/platformctl")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr[1] = fmt.Errorf("go build ./cmd/platformctl: %v\n%s", err, out)
		}
	})
	s.cluster = testcluster.StartForTest(t, testcluster.Options{
		CRDDirs:           rolloutCRDDirs(t),
		ControllerManager: true,
		Scheduler:         true,
		Nodes:             testcluster.KindNodes(),
		Rollouts:          true,
	})
	// The registry the staging pods load their models from, seeded as the
	// ml-platform Application's seed Job seeds a fresh one.
	registry := mlflowtest.Start(t)
	s.mlflow = registry.URL
	wg.Wait()
	if err := errors.Join(buildErr[:]...); err != nil {
		t.Fatal(err)
	}
	seedRegistry(t, s)

	port := freePort(t)
	controller, err := url.Parse(s.cluster.RolloutsMetrics)
	if err != nil {
		t.Fatal(err)
	}
	scrape := filepath.Join(s.dir, "scrape.yaml")
	if err := os.WriteFile(scrape, scrapeConfig(t, s.cluster.Kubeconfig, controller.Host, "127.0.0.1:"+strconv.Itoa(port)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.vm = vmtest.Start(t,
		"-promscrape.config="+scrape,
		// Pods come and go within seconds: discovery follows at once.
		"-promscrape.kubernetesSDCheckInterval=1s",
		// The stack runs 5 s (infrastructure/base/observability), scaled.
		"-search.latencyOffset="+scale(5*time.Second).String()).URL

	judge := proctest.Start(t, s.dir, "judge", nil, s.platform, "judge", "serve",
		"--addr=127.0.0.1:"+strconv.Itoa(port),
		"--prometheus-url="+s.vm,
		"--namespaces="+strings.Join(namespaces, ","))
	s.judge = "http://127.0.0.1:" + strconv.Itoa(port)
	judge.WaitOK(t, s.judge+"/readyz", time.Minute)
	s.setup = time.Since(s.started)
	t.Logf("suite up in %v: cluster %v, VictoriaMetrics %s, judge %s", s.setup.Round(time.Millisecond), s.cluster.Started.Round(time.Millisecond), s.vm, s.judge)
	return s
}

// seedRegistry runs the shipped seed Job's command
// (infrastructure/base/ml-platform/seed) against the suite's MLflow, with the
// repository's models/ for the image's /models.
func seedRegistry(t *testing.T, s *suite) {
	t.Helper()
	objs, err := render.Build(filepath.Join(repoRoot, "infrastructure", "base", "ml-platform"))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(objs, func(o render.Object) bool { return o.GetKind() == "Job" && o.GetName() == "model-seed" })
	if i < 0 {
		t.Fatal("infrastructure/base/ml-platform renders no Job model-seed")
	}
	containers, _, _ := unstructured.NestedSlice(objs[i].Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("Job model-seed: %d containers, want 1", len(containers))
	}
	c := containers[0].(map[string]any)
	command, _ := c["command"].([]any)
	if len(command) != 1 || command[0] != "/platformctl" {
		t.Fatalf("Job model-seed runs %v, want /platformctl", command)
	}
	var args []string
	for _, a := range c["args"].([]any) {
		arg := fmt.Sprint(a)
		if arg == "--models-dir=/models" {
			arg = "--models-dir=" + filepath.Join(repoRoot, "models")
		}
		args = append(args, arg)
	}
	if !slices.Contains(args, "--models-dir="+filepath.Join(repoRoot, "models")) {
		t.Fatalf("Job model-seed's args %v lack --models-dir=/models (the image's models)", args)
	}
	cmd := exec.Command(s.platform, args...)
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+s.mlflow)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("platformctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("registry seeded by the seed Job's command:\n%s", strings.TrimSpace(string(out)))
}

// addressAnnotation is where the fleet writes the loopback address of a pod's
// ml-inference process; the scrape configuration's last rule scrapes it.
const addressAnnotation = "test.ml-platform.io/address"

// scrapeConfig is the repository's vmagent scrape configuration with the
// durations scaled, the Kubernetes discovery pointed at the test cluster
// (kubeconfig_file), and two rules of this harness appended to every job:
// keep only pods whose process runs (the address annotation), and scrape
// that address. The job "delivery" (the Rollouts controller and the judge,
// which run as processes here, not as pods) gets them as static targets
// with the labels its relabelling gives them; its honor_labels, what the
// rollout dashboard's queries rely on, stays as shipped.
func scrapeConfig(t *testing.T, kubeconfig, controller, judge string) []byte {
	t.Helper()
	path := filepath.Join(repoRoot, "infrastructure", "base", "observability", "vmagent", "scrape.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	global, _ := cfg["global"].(map[string]any)
	for _, k := range []string{"scrape_interval", "scrape_timeout"} {
		d, err := time.ParseDuration(fmt.Sprint(global[k]))
		if err != nil {
			t.Fatalf("%s: global.%s: %v", path, k, err)
		}
		global[k] = scale(d).String()
	}
	jobs, _ := cfg["scrape_configs"].([]any)
	if len(jobs) == 0 {
		t.Fatalf("%s: no scrape_configs", path)
	}
	annotation := "__meta_kubernetes_pod_annotation_" + strings.NewReplacer(".", "_", "/", "_", "-", "_").Replace(addressAnnotation)
	delivery := false
	for _, j := range jobs {
		job := j.(map[string]any)
		if job["job_name"] == "delivery" {
			if job["honor_labels"] != true {
				t.Fatalf("%s: job delivery does not honor the series' labels: the controller's and the judge's namespace label would become exported_namespace", path)
			}
			delete(job, "kubernetes_sd_configs")
			delete(job, "relabel_configs")
			job["static_configs"] = []any{
				map[string]any{"targets": []string{controller}, "labels": map[string]string{"namespace": "argo-rollouts", "app": "argo-rollouts", "env": "platform"}},
				map[string]any{"targets": []string{judge}, "labels": map[string]string{"namespace": "ml-platform", "app": "judge", "env": "platform"}},
			}
			delivery = true
			continue
		}
		sds, _ := job["kubernetes_sd_configs"].([]any)
		for _, sd := range sds {
			sd.(map[string]any)["kubeconfig_file"] = kubeconfig
		}
		rules, _ := job["relabel_configs"].([]any)
		job["relabel_configs"] = append(rules,
			map[string]any{"source_labels": []string{annotation}, "regex": ".+", "action": "keep"},
			map[string]any{"source_labels": []string{annotation}, "target_label": "__address__"})
	}
	if !delivery {
		t.Fatalf("%s: no job delivery (the Rollouts controller and the judge)", path)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// timeScale compresses the shipped durations for `make test`: staging's
// 2-minute pauses become 30 s, the analyses' 1-minute intervals 15 s, the
// 15 s scrape interval 3.75 s. Everything keeps its proportion, so what the
// suite measures in intervals holds for the shipped values.
const timeScale = 4

func scale(d time.Duration) time.Duration { return d / timeScale }

// scaleString scales a Go duration string ("2m" -> "30s").
func scaleString(s string) (string, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return "", err
	}
	return scale(d).String(), nil
}

// get is a GET that returns the body of a 200.
func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}
