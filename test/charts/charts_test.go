// Package charts renders the upstream Helm charts this repository installs
// through Argo CD (Kyverno, External Secrets) with the values of their
// Applications, from the chart sources in the Go modules pinned by
// tools/crds, using the Helm CLI pinned by tools/helm. `platformctl verify`
// sees only what this repository renders; these tests check the pods those
// charts will create in the cluster:
//
//   - every pod template meets the Pod Security Standard "restricted" (the
//     level their namespaces enforce: Kyverno's through
//     managedNamespaceMetadata, External Secrets' likewise), with the same
//     upstream evaluator verify uses;
//   - every NetworkPolicy of infrastructure/network/system with a pod
//     selector selects at least one of the chart's pods, and every flow of
//     the connectivity matrix into or out of those namespaces names labels a
//     chart pod carries: the allow-lists are not written for pods that do
//     not exist.
//
// Chart dependencies fetched from remote repositories (Kyverno's CRD charts
// kyverno-api and openreports and its optional reports-server, External
// Secrets' optional bitwarden-sdk-server) are dropped from a copy of the
// chart: they hold CRDs or a component our values leave disabled, no pod of
// the release.
package charts

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/netpol"
	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/testtools"
	"github.com/ml-platform/platform/internal/verify"
)

const repoRoot = "../.."

// chart is one upstream chart: its Application, the module and directory of
// its source, the remote dependencies to drop, and values to add for the
// render (never to change what the Application deploys).
type chart struct {
	app, module, dir string
	dropDeps         []string
	extraValues      map[string]any
	// version is what the chart directory's Chart.yaml must say: the
	// Application's targetRevision, unless the source tag lags the published
	// chart (External Secrets bumps the chart version after tagging).
	version string
	// template: the source holds values.tmpl.yaml, which the project's
	// release fills in (Envoy Gateway: the image, and the chart version in
	// Chart.yaml, v0.0.0-latest in the source); these are its substitutions,
	// and the chart version becomes the Application's targetRevision.
	template map[string]string
	// runtimePods are pods the chart's controller creates at run time (no
	// render shows them), by their labels, and the module file and line
	// that set those labels: the NetworkPolicies and flows may name them,
	// and the test checks the source still says so.
	runtimePods []runtimePod
}

type runtimePod struct {
	name   string
	labels labels.Set
	source string   // file in the module
	says   []string // lines the file must contain
}

var charts = []chart{
	{
		app: "kyverno", module: "github.com/kyverno/kyverno", dir: "charts/kyverno",
		dropDeps: []string{"kyverno-api", "openreports", "reports-server"},
		// The CRDs are not pods; their subcharts are the dropped ones.
		extraValues: map[string]any{"crds": map[string]any{"install": false}},
	},
	{
		app: "external-secrets", module: "github.com/external-secrets/external-secrets", dir: "deploy/charts/external-secrets",
		dropDeps: []string{"bitwarden-sdk-server"},
		version:  "0.16.1",
	},
	{
		app: "envoy-gateway", module: "github.com/envoyproxy/gateway", dir: "charts/gateway-helm",
		version: "v0.0.0-latest",
		template: map[string]string{
			"${GatewayImage}":           "docker.io/envoyproxy/gateway:v1.9.1",
			"${GatewayImagePullPolicy}": "IfNotPresent",
		},
		runtimePods: []runtimePod{{
			name: "the Envoy proxy of Gateway envoy-gateway-system/platform",
			labels: labels.Set{
				"app.kubernetes.io/name": "envoy", "app.kubernetes.io/component": "proxy", "app.kubernetes.io/managed-by": "envoy-gateway",
				"gateway.envoyproxy.io/owning-gateway-name": "platform", "gateway.envoyproxy.io/owning-gateway-namespace": "envoy-gateway-system",
			},
			source: "internal/infrastructure/kubernetes/proxy/resource.go",
			says:   []string{`"app.kubernetes.io/name":       "envoy"`, `"app.kubernetes.io/component":  "proxy"`},
		}},
	},
}

// moduleDir downloads (or finds) the module at the version tools/crds pins.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = filepath.Join(repoRoot, "tools", "crds")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s in tools/crds: %v\n%s", module, err, out)
	}
	var m struct{ Dir, Version string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download %s: %v (%s)", module, err, out)
	}
	return m.Dir
}

// application reads the Application's chart pin, release, namespace and values.
func application(t *testing.T, name string) (revision, release, namespace string, values map[string]any) {
	t.Helper()
	objs, err := gitops.ReadManifests(filepath.Join(repoRoot, "infrastructure", "argocd", "apps", name+".yaml"))
	if err != nil || len(objs) != 1 {
		t.Fatalf("application %s: %v", name, err)
	}
	o := objs[0].Object
	revision, _, _ = unstructured.NestedString(o, "spec", "source", "targetRevision")
	release, _, _ = unstructured.NestedString(o, "spec", "source", "helm", "releaseName")
	namespace, _, _ = unstructured.NestedString(o, "spec", "destination", "namespace")
	values, _, _ = unstructured.NestedMap(o, "spec", "source", "helm", "valuesObject")
	return
}

// copyChart copies dir to a temporary directory without the dropped
// dependencies in Chart.yaml (Helm refuses a chart whose listed
// dependencies are not in charts/).
func copyChart(t *testing.T, dir string, drop []string) (string, map[string]any) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(dir))
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	// Module cache files are read-only; the copy must be writable.
	filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			mode := os.FileMode(0o644)
			if d.IsDir() {
				mode = 0o755
			}
			os.Chmod(p, mode)
		}
		return nil
	})
	data, err := os.ReadFile(filepath.Join(dst, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := yaml.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	deps, _ := meta["dependencies"].([]any)
	var kept []any
	for _, d := range deps {
		if !slices.Contains(drop, d.(map[string]any)["name"].(string)) {
			kept = append(kept, d)
		}
	}
	meta["dependencies"] = kept
	out, _ := yaml.Marshal(meta)
	os.WriteFile(filepath.Join(dst, "Chart.yaml"), out, 0o644)
	os.Remove(filepath.Join(dst, "Chart.lock"))
	return dst, meta
}

// fillTemplate writes values.yaml from values.tmpl.yaml and sets the
// chart's version, as the chart's release process does.
func fillTemplate(t *testing.T, dir string, subst map[string]string, version string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "values.tmpl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for k, v := range subst {
		text = strings.ReplaceAll(text, k, v)
	}
	if strings.Contains(text, "${") {
		t.Fatalf("values.tmpl.yaml still has a placeholder after substitution")
	}
	os.WriteFile(filepath.Join(dir, "values.yaml"), []byte(text), 0o644)
}

// renderChart runs helm template for c and returns the objects, with the
// release namespace set on the namespaced ones Helm leaves without one.
func renderChart(t *testing.T, helm string, c chart) (namespace string, objs []render.Object) {
	t.Helper()
	revision, release, namespace, values := application(t, c.app)
	dir, meta := copyChart(t, filepath.Join(moduleDir(t, c.module), c.dir), c.dropDeps)
	if c.template != nil {
		fillTemplate(t, dir, c.template, revision)
	}
	want := c.version
	if want == "" {
		want = revision
	}
	if got := meta["version"]; got != want {
		t.Errorf("%s: chart source says version %v; want %s (the Application pins %s)", c.app, got, want, revision)
	}
	for k, v := range c.extraValues {
		values[k] = v
	}
	vals, _ := yaml.Marshal(values)
	valuesFile := filepath.Join(t.TempDir(), "values.yaml")
	os.WriteFile(valuesFile, vals, 0o644)
	// The cluster version is the kube-apiserver verify runs (tools/kubernetes).
	cmd := exec.Command(helm, "template", release, dir, "--namespace", namespace, "--values", valuesFile,
		"--kube-version", kubeVersion(t))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", c.app, err, stderr.String())
	}
	file := filepath.Join(t.TempDir(), "rendered.yaml")
	os.WriteFile(file, out, 0o644)
	objs, err = gitops.ReadManifests(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetNamespace() == "" && o.GetKind() != "Namespace" && !strings.HasPrefix(o.GetKind(), "Cluster") &&
			o.GetKind() != "CustomResourceDefinition" && !strings.HasSuffix(o.GetKind(), "WebhookConfiguration") {
			o.SetNamespace(namespace)
		}
	}
	return namespace, objs
}

// kubeVersion is the Kubernetes release pinned in tools/kubernetes.
func kubeVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "tools", "kubernetes", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?k8s\.io/kubernetes (v\S+)`).FindSubmatch(data); m != nil {
		return string(m[1])
	}
	t.Fatal("tools/kubernetes/go.mod does not require k8s.io/kubernetes")
	return ""
}

// pods returns the pod labels of every workload in objs.
func pods(objs []render.Object) map[string]labels.Set {
	out := map[string]labels.Set{}
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob":
		default:
			continue
		}
		path := []string{"spec", "template", "metadata", "labels"}
		if o.GetKind() == "CronJob" {
			path = []string{"spec", "jobTemplate", "spec", "template", "metadata", "labels"}
		}
		l, _, _ := unstructured.NestedStringMap(o.Object, path...)
		out[o.Ref()] = l
	}
	return out
}

func TestChartPods(t *testing.T) {
	helm := testtools.Bin(t, "HELM_BIN", "helm")
	system, err := render.Build(filepath.Join(repoRoot, "infrastructure", "network", "system"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := gitops.Load(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	matrix, err := netpol.Load(c.NetworkMatrix, c.EnvironmentNames())
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range charts {
		t.Run(ch.app, func(t *testing.T) {
			namespace, objs := renderChart(t, helm, ch)
			workloads := pods(objs)
			if len(workloads) == 0 {
				t.Fatalf("%s renders no workload", ch.app)
			}

			// Long-running pods run at the platform's priority, above every
			// environment's workloads; CRDs are never pruned.
			for _, o := range objs {
				switch o.GetKind() {
				case "Deployment", "StatefulSet", "DaemonSet":
					if pc, _, _ := unstructured.NestedString(o.Object, "spec", "template", "spec", "priorityClassName"); pc != c.PlatformPriorityClass {
						t.Errorf("%s: priorityClassName %q, want %s", o.Ref(), pc, c.PlatformPriorityClass)
					}
				case "CustomResourceDefinition":
					if !strings.Contains(o.GetAnnotations()["argocd.argoproj.io/sync-options"], "Prune=false") {
						t.Errorf("%s: no argocd.argoproj.io/sync-options Prune=false: pruning it would delete every object of its kind", o.Ref())
					}
				}
			}

			// Pods the controller creates, as its source labels them.
			for _, rp := range ch.runtimePods {
				src, err := os.ReadFile(filepath.Join(moduleDir(t, ch.module), rp.source))
				if err != nil {
					t.Fatal(err)
				}
				for _, line := range rp.says {
					if !strings.Contains(string(src), line) {
						t.Errorf("%s: %s no longer says %s: the labels of %s changed", ch.module, rp.source, line, rp.name)
					}
				}
				workloads["runtime: "+rp.name] = rp.labels
			}

			// Pod Security "restricted", as the namespace enforces it.
			r := &verify.Rendered{Order: []string{ch.app}, Objects: map[string][]render.Object{ch.app: objs}}
			for _, f := range verify.PodSecurity(&gitops.Repository{}, r) {
				t.Errorf("%s", f)
			}

			// Our NetworkPolicies select real pods of the chart.
			for _, p := range system {
				if p.GetKind() != "NetworkPolicy" || p.GetNamespace() != namespace {
					continue
				}
				if err := selectsSome(p, workloads); err != nil {
					t.Errorf("%s", err)
				}
			}
			// The matrix's flows name labels a chart pod carries.
			for _, f := range matrix.Flows {
				for _, peer := range []netpol.Peer{f.From, f.To} {
					if peer.Namespace != namespace {
						continue
					}
					if !matchesSome(labels.SelectorFromSet(peer.Labels), workloads) {
						t.Errorf("flow %q names pods %v in %s; no pod of the %s chart carries those labels", f.Name, peer.Labels, namespace, ch.app)
					}
				}
			}
			t.Logf("%s: %d workloads rendered by the chart, all restricted; %d objects", ch.app, len(workloads), len(objs))
		})
	}
}

// selectsSome: a NetworkPolicy with a pod selector selects at least one of
// the workloads (an empty selector selects every pod).
func selectsSome(p render.Object, workloads map[string]labels.Set) error {
	raw, _, _ := unstructured.NestedMap(p.Object, "spec", "podSelector")
	data, _ := json.Marshal(raw)
	var ls metav1.LabelSelector
	if err := json.Unmarshal(data, &ls); err != nil {
		return err
	}
	selector, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return err
	}
	if !matchesSome(selector, workloads) {
		return &selectorError{p.Ref(), selector.String()}
	}
	return nil
}

type selectorError struct{ policy, selector string }

func (e *selectorError) Error() string {
	return e.policy + ": its pod selector " + e.selector + " matches no pod the chart renders"
}

func matchesSome(s labels.Selector, workloads map[string]labels.Set) bool {
	for _, l := range workloads {
		if s.Matches(l) {
			return true
		}
	}
	return false
}

// TestHarnessCatchesPlants proves both checks can fail on a real render: a
// chart pod made privileged is reported by the Pod Security check, and a
// policy selecting a label no chart pod carries is reported by the selector
// check.
func TestHarnessCatchesPlants(t *testing.T) {
	helm := testtools.Bin(t, "HELM_BIN", "helm")
	_, objs := renderChart(t, helm, charts[0])
	planted := false
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		c := containers[0].(map[string]any)
		c["securityContext"] = map[string]any{"privileged": true}
		unstructured.SetNestedSlice(o.Object, containers, "spec", "template", "spec", "containers")
		planted = true
		break
	}
	if !planted {
		t.Fatal("no Deployment to plant a privileged container in")
	}
	r := &verify.Rendered{Order: []string{"planted"}, Objects: map[string][]render.Object{"planted": objs}}
	found := false
	for _, f := range verify.PodSecurity(&gitops.Repository{}, r) {
		if strings.Contains(f.String(), "privileged") {
			found = true
		}
	}
	if !found {
		t.Error("a privileged chart container passed the Pod Security check")
	}

	policy := render.Object{Unstructured: &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
		"metadata": map[string]any{"name": "planted", "namespace": "kyverno"},
		"spec":     map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/component": "no-such-controller"}}},
	}}}
	if err := selectsSome(policy, pods(objs)); err == nil {
		t.Error("a policy selecting no chart pod passed the selector check")
	}
}
