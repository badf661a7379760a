// Package charts renders the upstream Helm charts this repository installs
// through Argo CD (Kyverno, External Secrets, Envoy Gateway) with the values
// of their Applications (internal/charts: the chart sources in the Go modules
// pinned by tools/crds, the Helm CLI pinned by tools/helm). `platformctl verify`
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
package charts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ml-platform/platform/internal/charts"
	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/netpol"
	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/testtools"
	"github.com/ml-platform/platform/internal/verify"
)

const repoRoot = "../.."

// renderChart renders one chart as its Application installs it.
func renderChart(t *testing.T, helm string, c charts.Chart) (namespace string, objs []render.Object) {
	t.Helper()
	repo, err := gitops.Load(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	app, err := charts.ReadApplication(repo, c.App)
	if err != nil {
		t.Fatal(err)
	}
	objs, err = charts.Render(repo, helm, c, app, charts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return app.Namespace, objs
}

func moduleDir(t *testing.T, module string) string {
	t.Helper()
	repo, err := gitops.Load(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := repo.ModuleDir(module)
	if err != nil {
		t.Fatal(err)
	}
	return dir
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
	for _, ch := range charts.All {
		t.Run(ch.App, func(t *testing.T) {
			namespace, objs := renderChart(t, helm, ch)
			workloads := pods(objs)
			if len(workloads) == 0 {
				t.Fatalf("%s renders no workload", ch.App)
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
			for _, rp := range ch.RuntimePods {
				src, err := os.ReadFile(filepath.Join(moduleDir(t, ch.Module), rp.Source))
				if err != nil {
					t.Fatal(err)
				}
				for _, line := range rp.Says {
					if !strings.Contains(string(src), line) {
						t.Errorf("%s: %s no longer says %s: the labels of %s changed", ch.Module, rp.Source, line, rp.Name)
					}
				}
				workloads["runtime: "+rp.Name] = rp.Labels
			}

			// Pod Security "restricted", as the namespace enforces it.
			r := &verify.Rendered{Order: []string{ch.App}, Objects: map[string][]render.Object{ch.App: objs}}
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
						t.Errorf("flow %q names pods %v in %s; no pod of the %s chart carries those labels", f.Name, peer.Labels, namespace, ch.App)
					}
				}
			}
			t.Logf("%s: %d workloads rendered by the chart, all restricted; %d objects", ch.App, len(workloads), len(objs))
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
	_, objs := renderChart(t, helm, charts.All[0])
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
