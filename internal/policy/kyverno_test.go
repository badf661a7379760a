package policy

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/testtools"
	"github.com/ml-platform/platform/internal/verify"
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

// modeOf is the mode whose copies of the policies must judge a namespace
// with this env label (infrastructure/policies/kyverno/kustomization.yaml).
func modeOf(env string) string {
	switch env {
	case "staging", "prod", "platform":
		return "-enforce"
	}
	return "-audit"
}

// target is what TestEnvironmentsPassPolicies applies the bundle to: an
// environment, or an entry point that renders workloads (the observability
// stack), with the env label of the namespace its workloads run in.
type target struct {
	name, path, env string
}

// targets lists every environment of infrastructure/verify.yaml, and every
// entry point that renders workloads into a Namespace it also renders.
func targets(t *testing.T) []target {
	t.Helper()
	cfg, err := verify.LoadConfig(filepath.Join(repoRoot, verify.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.Rooted(repoRoot)
	var out []target
	for _, env := range cfg.Environments {
		out = append(out, target{env.Name, env.Path, env.Name})
	}
	for _, p := range cfg.EntryPoints {
		objs, err := render.Build(p)
		if err != nil {
			t.Fatal(err)
		}
		if workloadCount(objs) == 0 {
			continue
		}
		envs := map[string]bool{}
		for _, o := range objs {
			if o.GetKind() == "Namespace" {
				envs[o.GetLabels()["env"]] = true
			}
		}
		if len(envs) != 1 {
			t.Fatalf("%s renders workloads and %d Namespaces with env labels %v; want one Namespace", p, len(envs), envs)
		}
		for env := range envs {
			out = append(out, target{filepath.Base(p), p, env})
		}
	}
	return out
}

func workloadCount(objs []render.Object) int {
	n := 0
	for _, o := range objs {
		switch o.GetKind() {
		case "Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob":
			n++
		}
	}
	return n
}

// TestEnvironmentsPassPolicies renders every environment of
// infrastructure/verify.yaml, and every entry point with workloads (the
// observability stack), and applies the deployed policy bundle to it: no
// result may fail or error, every workload is judged by all five policies of
// its namespace's mode, and by no policy of the other mode.
func TestEnvironmentsPassPolicies(t *testing.T) {
	bin := kyvernoBin(t)
	policies := bundle(t)
	tgts := targets(t)
	if len(tgts) < 4 {
		t.Fatalf("%d targets (%v); want the three environments and the observability stack", len(tgts), tgts)
	}
	for _, tg := range tgts {
		t.Run(tg.name, func(t *testing.T) {
			resources, err := render.Build(tg.path)
			if err != nil {
				t.Fatal(err)
			}
			workloads := workloadCount(resources)
			if workloads == 0 {
				t.Fatalf("%s renders no workload: nothing for the policies to check", tg.path)
			}
			run, err := Apply(bin, t.TempDir(), policies, resources)
			if err != nil {
				t.Fatal(err)
			}
			mode := modeOf(tg.env)
			for _, r := range run.Results {
				switch {
				case r.Result == "fail" || r.Result == "error":
					t.Errorf("policy violation in %s: %s", tg.name, r)
				case r.Result == "pass" && !strings.HasSuffix(r.Policy, mode):
					t.Errorf("%s: %s judged a workload of %s (env=%s); only %s policies should match it", r.Policy, r, tg.name, tg.env, mode)
				}
			}
			if got, want := run.Count("pass"), workloads*policyCount; got != want {
				t.Errorf("%s: %d passing results; want %d (%d workloads x %d policies): a policy did not match?\n%s",
					tg.name, got, want, workloads, policyCount, run.Output)
			}
			t.Logf("%s (env=%s, %s): %d workloads, %d pass, %d fail, %d skip", tg.name, tg.env, mode, workloads, run.Count("pass"), run.Count("fail"), run.Count("skip"))
		})
	}
}

// TestHarnessCatchesViolations plants the seed's non-compliant Deployment
// (nginx:latest, no resources, no probes) in each mode's namespaces: every
// policy of that mode must fail it, and in a system namespace every policy
// must skip it (the deployed PolicyException, which names both copies). Without this, a harness that silently
// matched nothing would pass TestEnvironmentsPassPolicies.
func TestHarnessCatchesViolations(t *testing.T) {
	bin := kyvernoBin(t)
	policies := bundle(t)
	seed, err := verify.ReadManifests(filepath.Join(repoRoot, "test", "kyverno", "resources", "seed-deployment.yaml"))
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
