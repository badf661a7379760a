package policy

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/testtools"
)

// repoRoot is the repository root, from this package's directory.
const repoRoot = "../.."

// bundlePath is what the kyverno-policies Application syncs: every policy in
// both modes, with their PolicyExceptions.
var bundlePath = filepath.Join(repoRoot, "infrastructure", "policies", "kyverno")

// policyCount is the number of distinct policies in the base; the bundle
// holds each twice (-audit and -enforce).
const policyCount = 5

func kyvernoBin(t *testing.T) string {
	t.Helper()
	return testtools.Bin(t, "KYVERNO_BIN", "kyverno")
}

func bundle(t *testing.T) []render.Object {
	t.Helper()
	objs, err := render.Build(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	var pols, excs int
	for _, o := range objs {
		switch o.GetKind() {
		case "ValidatingPolicy":
			pols++
		case "PolicyException":
			excs++
		}
	}
	if pols != 2*policyCount || excs != 1 {
		t.Fatalf("%s renders %d ValidatingPolicies and %d PolicyExceptions; want %d (each policy in both modes) and 1", bundlePath, pols, excs, 2*policyCount)
	}
	return objs
}

// Every environment and entry point passing the bundle is proven by
// `platformctl verify` (internal/verify, the "kyverno policies" stage: every
// workload judged by every policy of exactly one mode, no failure). This
// package's tests prove the CLI harness itself.

// TestHarnessCatchesViolations plants the seed's non-compliant Deployment
// (nginx:latest, no resources, no probes) in each mode's namespaces: every
// policy of that mode must fail it, and in a system namespace every policy
// must skip it (the deployed PolicyException, which names both copies). Without this, a harness that silently
// matched nothing would let verify's policy stage pass.
func TestHarnessCatchesViolations(t *testing.T) {
	bin := kyvernoBin(t)
	policies := bundle(t)
	seed, err := gitops.ReadManifests(filepath.Join(repoRoot, "test", "kyverno", "resources", "seed-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		namespace, env string
		want           string // result of every policy of the mode
		mode           string
	}{
		{"ml-inference-dev", "dev", "fail", "-audit"},
		{"ml-inference-staging", "staging", "fail", "-enforce"},
		{"ml-inference-prod", "prod", "fail", "-enforce"},
		{"observability", "platform", "fail", "-enforce"},
		{"team-sandbox", "", "fail", "-audit"}, // no env label: audited
		// The PolicyException, for both copies of every policy.
		{"kube-system", "", "skip", "-audit"},
		{"external-secrets", "prod", "skip", "-enforce"},
	} {
		t.Run(tc.namespace, func(t *testing.T) {
			ns := namespace(tc.namespace, tc.env)
			dep := render.Object{Unstructured: seed[0].DeepCopy()}
			dep.SetNamespace(tc.namespace)
			run, err := Apply(bin, t.TempDir(), policies, []render.Object{ns, dep})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range run.Results {
				if r.Kind == "Deployment" {
					got[r.Policy] = r.Result
				}
			}
			if len(got) != policyCount {
				t.Errorf("%d policies judged the planted Deployment; want %d (%v)\n%s", len(got), policyCount, got, run.Output)
			}
			for pol, res := range got {
				if !strings.HasSuffix(pol, tc.mode) || res != tc.want {
					t.Errorf("%s: %s; want every %s policy to %s", pol, res, tc.mode, tc.want)
				}
			}
		})
	}
}

func namespace(name, env string) render.Object {
	labels := map[string]any{"kubernetes.io/metadata.name": name}
	if env != "" {
		labels["env"] = env
	}
	return render.Object{Unstructured: &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": name, "labels": labels},
	}}}
}
