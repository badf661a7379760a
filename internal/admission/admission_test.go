package admission

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/testcluster"
)

var repo = filepath.Join("..", "..")

// seedDeployment is the seed plan's non-compliant example: nginx:latest, no
// resources, no probes, no security context, no labels.
func seedDeployment(ns string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "nginx", "namespace": ns},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "nginx"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "nginx"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "nginx", "image": "nginx:latest"}}},
			},
		},
	}}
}

// seedRollout is the same, as an Argo Rollouts Rollout.
func seedRollout(ns string) *unstructured.Unstructured {
	u := seedDeployment(ns)
	u.SetAPIVersion("argoproj.io/v1alpha1")
	u.SetKind("Rollout")
	u.Object["spec"].(map[string]any)["strategy"] = map[string]any{"canary": map[string]any{}}
	return u
}

func objects(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render.Build(filepath.Join(repo, dir))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.Unstructured
	}
	return out
}

func TestDerivedPolicies(t *testing.T) {
	derived, err := FromKyverno(objects(t, "infrastructure/policies/kyverno"))
	if err != nil {
		t.Fatal(err)
	}
	if len(derived) != 10 {
		t.Fatalf("derived %d admission policies, want 10 (5 policies x audit/enforce)", len(derived))
	}
	for _, d := range derived {
		actions, _, _ := unstructured.NestedStringSlice(d.Binding.Object, "spec", "validationActions")
		name := d.Policy.GetName()
		if strings.HasSuffix(name, "-enforce") != (strings.Join(actions, ",") == "Deny") {
			t.Errorf("%s: validationActions %v", name, actions)
		}
		conds, _, _ := unstructured.NestedSlice(d.Policy.Object, "spec", "matchConditions")
		if len(conds) == 0 || !strings.Contains(conds[len(conds)-1].(map[string]any)["expression"].(string), "kube-system") {
			t.Errorf("%s: the system-namespace exception is not a match condition: %v", name, conds)
		}
	}
}

// TestAdmissionEnforcesPolicies installs the derived admission policies in a
// real kube-apiserver (with the Argo Rollouts CRDs): the seed's non-compliant
// Deployment, and the same as a Rollout, are rejected in staging and prod,
// only audited in dev, exempt in a system namespace, and every rendered
// workload of every environment and of the observability stack is accepted.
func TestAdmissionEnforcesPolicies(t *testing.T) {
	derived, err := FromKyverno(objects(t, "infrastructure/policies/kyverno"))
	if err != nil {
		t.Fatal(err)
	}
	// The environments render custom resources too (each one's HTTPRoute):
	// the API server gets the pinned CRDs, as verify's does.
	crdDirs := filepath.SplitList(os.Getenv("PLATFORMCTL_CRD_DIRS"))
	if len(crdDirs) == 0 {
		t.Fatal("PLATFORMCTL_CRD_DIRS is not set: run `make test`, or export PLATFORMCTL_CRD_DIRS=$(hack/tools.sh crds | paste -sd: -)")
	}
	cluster, err := testcluster.Start(testcluster.Options{CRDDirs: crdDirs})
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	ctx := context.Background()
	cl, err := client.New(cluster.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	envs := map[string][]*unstructured.Unstructured{}
	// Every environment, and the observability stack (env=platform: enforced).
	paths := map[string]string{
		"observability":      "infrastructure/base/observability",
		"observability-prod": "infrastructure/overlays/observability-prod",
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		paths[env] = "infrastructure/overlays/" + env
	}
	for env, path := range paths {
		envs[env] = objects(t, path)
		for _, o := range envs[env] {
			// Both shapes of the observability stack render its Namespace.
			if o.GetKind() == "Namespace" {
				if err := cl.Create(ctx, o.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
					t.Fatal(err)
				}
			}
		}
	}
	for _, d := range derived {
		if err := cl.Create(ctx, d.Policy, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
			t.Fatalf("create %s: %v", d.Policy.GetName(), err)
		}
		if err := cl.Create(ctx, d.Binding, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
			t.Fatalf("create binding %s: %v", d.Binding.GetName(), err)
		}
	}
	dryRun := func(o *unstructured.Unstructured) error {
		return cl.Create(ctx, o.DeepCopy(), client.DryRunAll)
	}
	// Policies take effect once the API server has compiled them.
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for {
		last = dryRun(seedDeployment("ml-inference-prod"))
		if last != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, seed := range []func(string) *unstructured.Unstructured{seedDeployment, seedRollout} {
		kind := seed("").GetKind()
		for _, ns := range []string{"ml-inference-staging", "ml-inference-prod", "observability"} {
			err := dryRun(seed(ns))
			if err == nil || !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) {
				t.Fatalf("seed %s in %s: %v, want a rejection by the admission policies", kind, ns, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "ValidatingAdmissionPolicy") || !strings.Contains(msg, "-enforce") {
				t.Errorf("rejection in %s does not name the policy: %s", ns, msg)
			}
			t.Logf("%s in %s: %s", kind, ns, msg)
		}
		if err := dryRun(seed("ml-inference-dev")); err != nil {
			t.Errorf("dev audits, it must not deny a %s: %v", kind, err)
		}
		if err := dryRun(seed("kube-system")); err != nil {
			t.Errorf("kube-system is excepted, a %s too: %v", kind, err)
		}
	}
	accepted := 0
	for env, objs := range envs {
		for _, o := range objs {
			if o.GetKind() == "Namespace" {
				continue
			}
			if err := dryRun(o); err != nil {
				t.Errorf("%s: %s/%s rejected: %v", env, o.GetKind(), o.GetName(), err)
				continue
			}
			accepted++
		}
	}
	t.Logf("%d admission policies active; %d rendered objects accepted", len(derived), accepted)
}
