package testcluster

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/testtools"
)

// rolloutCRDDirs are the Argo Rollouts CRD directories among those make
// test exports (hack/tools.sh crds); the others would only slow the start.
func rolloutCRDDirs(t *testing.T) []string {
	t.Helper()
	dirs := filepath.SplitList(os.Getenv("PLATFORMCTL_CRD_DIRS"))
	if len(dirs) == 0 {
		t.Fatal("PLATFORMCTL_CRD_DIRS is not set: run `make test`, or export PLATFORMCTL_CRD_DIRS=$(hack/tools.sh crds | paste -sd: -)")
	}
	dirs = slices.DeleteFunc(dirs, func(d string) bool { return !strings.Contains(d, "/argo-rollouts@") })
	if len(dirs) == 0 {
		t.Fatalf("PLATFORMCTL_CRD_DIRS=%s has no Argo Rollouts CRDs (tools/crds/go.mod)", os.Getenv("PLATFORMCTL_CRD_DIRS"))
	}
	return dirs
}

// object parses one YAML manifest.
func object(t *testing.T, manifest string, args ...any) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(fmt.Sprintf(manifest, args...)), &u.Object); err != nil {
		t.Fatalf("manifest: %v\n%s", err, manifest)
	}
	return u
}

// rollout is a canary Rollout of 2 replicas with the given steps.
func rollout(t *testing.T, namespace, name, steps string) *unstructured.Unstructured {
	t.Helper()
	return object(t, `
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {namespace: %[1]s, name: %[2]s}
spec:
  replicas: 2
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      containers:
      - name: app
        image: ml-inference:v1
        resources: {requests: {cpu: 100m, memory: 64Mi}}
  strategy:
    canary:
      steps:
%[3]s`, namespace, name, steps)
}

// setImage starts a new revision of a Rollout: the canary steps run.
func setImage(ctx context.Context, t *testing.T, c *Cluster, namespace, name, image string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":%q}]}}}}`, image)
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(rolloutGVK())
	u.SetNamespace(namespace)
	u.SetName(name)
	if err := c.Client.Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// waitRollout polls the Rollout until cond holds for its phase and abort flag.
func waitRollout(ctx context.Context, t *testing.T, c *Cluster, namespace, name, what string, cond func(phase string, aborted bool) bool) {
	t.Helper()
	for {
		phase, msg, aborted, err := c.RolloutStatus(ctx, namespace, name)
		if err == nil && cond(phase, aborted) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Rollout %s/%s not %s: phase %q (%s), aborted %t, err %v", namespace, name, what, phase, msg, aborted, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestRollouts runs canaries on the real Argo Rollouts controller: one is
// promoted after its timed pause, one whose analysis fails is aborted, one
// paused without end is promoted with the kubectl plugin.
func TestRollouts(t *testing.T) {
	t.Parallel()
	plugin := testtools.Bin(t, "KUBECTL_ARGO_ROLLOUTS_BIN", "kubectl-argo-rollouts")
	c := StartForTest(t, Options{
		CRDDirs:           rolloutCRDDirs(t),
		ControllerManager: true,
		Scheduler:         true,
		Nodes:             KindNodes(),
		Rollouts:          true,
	})
	createNamespace(t, c.Client, "delivery")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// first creates a Rollout and waits for its first revision, which
	// skips the steps as on a real cluster.
	first := func(t *testing.T, u *unstructured.Unstructured) {
		t.Helper()
		if err := c.Client.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := c.WaitReady(ctx, Workload{"Rollout", "delivery", u.GetName()}); err != nil {
			t.Fatal(err)
		}
		t.Logf("first revision Healthy in %v", time.Since(start).Round(time.Millisecond))
	}

	promote := func(t *testing.T) {
		first(t, rollout(t, "delivery", "promote", `
      - setWeight: 50
      - pause: {duration: 5s}`))
		start := time.Now()
		setImage(ctx, t, c, "delivery", "promote", "ml-inference:v2")
		waitRollout(ctx, t, c, "delivery", "promote", "paused", func(phase string, _ bool) bool { return phase == "Paused" })
		paused := time.Now()
		if err := c.WaitReady(ctx, Workload{"Rollout", "delivery", "promote"}); err != nil {
			t.Fatal(err)
		}
		done := time.Now()
		t.Logf("canary: update to paused %v, paused to Healthy %v, in all %v",
			paused.Sub(start).Round(time.Millisecond), done.Sub(paused).Round(time.Millisecond), done.Sub(start).Round(time.Millisecond))
		if done.Sub(paused) < 4*time.Second {
			t.Errorf("promoted %v after its 5 s pause began", done.Sub(paused))
		}
	}

	abort := func(t *testing.T) {
		var queries atomic.Int32
		metric := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			queries.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"errorRate": 0.5}`) // 50 % errors
		}))
		defer metric.Close()
		if err := c.Client.Create(ctx, object(t, `
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {namespace: delivery, name: error-rate}
spec:
  metrics:
  - name: error-rate
    successCondition: result < 0.05
    provider:
      web:
        url: %s
        jsonPath: "{$.errorRate}"`, metric.URL)); err != nil {
			t.Fatal(err)
		}
		first(t, rollout(t, "delivery", "abort", `
      - setWeight: 50
      - analysis: {templates: [{templateName: error-rate}]}`))
		start := time.Now()
		setImage(ctx, t, c, "delivery", "abort", "ml-inference:v2")
		analysis := waitAnalysisRun(ctx, t, c, "delivery")
		waitRollout(ctx, t, c, "delivery", "abort", "aborted", func(_ string, aborted bool) bool { return aborted })
		aborted := time.Now()
		t.Logf("canary: update to AnalysisRun %v, AnalysisRun to abort %v, in all %v (%d web queries)",
			analysis.Sub(start).Round(time.Millisecond), aborted.Sub(analysis).Round(time.Millisecond), aborted.Sub(start).Round(time.Millisecond), queries.Load())
		if queries.Load() == 0 {
			t.Error("aborted without querying the metric")
		}
		// WaitReady gives up at once on a Degraded Rollout, saying why.
		err := c.WaitReady(ctx, Workload{"Rollout", "delivery", "abort"})
		if err == nil || !strings.Contains(err.Error(), "aborted: true") {
			t.Errorf("WaitReady on the aborted Rollout: %v", err)
		}
		t.Logf("WaitReady said: %v", err)
	}

	manual := func(t *testing.T) {
		first(t, rollout(t, "delivery", "manual", `
      - setWeight: 50
      - pause: {}`))
		setImage(ctx, t, c, "delivery", "manual", "ml-inference:v2")
		waitRollout(ctx, t, c, "delivery", "manual", "paused", func(phase string, _ bool) bool { return phase == "Paused" })
		out, err := exec.CommandContext(ctx, plugin, "promote", "manual", "-n", "delivery", "--kubeconfig", c.Kubeconfig).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl-argo-rollouts promote: %v\n%s", err, out)
		}
		if err := c.WaitReady(ctx, Workload{"Rollout", "delivery", "manual"}); err != nil {
			t.Fatal(err)
		}
	}

	runConcurrently(t,
		subtest{"promoted after pause", promote},
		subtest{"aborted by failing analysis", abort},
		subtest{"promoted with the kubectl plugin", manual},
	)
}

// waitAnalysisRun waits for the first AnalysisRun in namespace and returns
// when it was seen.
func waitAnalysisRun(ctx context.Context, t *testing.T, c *Cluster, namespace string) time.Time {
	t.Helper()
	for {
		var runs unstructured.UnstructuredList
		runs.SetAPIVersion("argoproj.io/v1alpha1")
		runs.SetKind("AnalysisRunList")
		if err := c.Client.List(ctx, &runs, client.InNamespace(namespace)); err == nil && len(runs.Items) > 0 {
			return time.Now()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no AnalysisRun in %s: %v", namespace, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
