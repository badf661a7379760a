package verify

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/testcluster"
	"github.com/ml-platform/platform/internal/testtools"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func fixture(t *testing.T, name string) (*gitops.Repository, string) {
	t.Helper()
	root := filepath.Join("testdata", name)
	c, err := gitops.LoadFile(root, filepath.Join(root, "platform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return c, root
}

// inputs renders a fixture as verify does, with the pinned Kyverno CLI.
func inputs(t *testing.T, name string) *Inputs {
	t.Helper()
	c, _ := fixture(t, name)
	rr := &gitops.Renderer{}
	r, fs := Render(c, rr)
	if len(fs) > 0 {
		t.Fatalf("render: %s", findingsText(fs))
	}
	return &Inputs{Repo: c, Rendered: r, Renderer: rr, Options: Options{KyvernoBin: testtools.Bin(t, "KYVERNO_BIN", "kyverno")}}
}

// run runs the named checks on in and returns their findings.
func run(t *testing.T, in *Inputs, names ...string) []Finding {
	t.Helper()
	var all []Finding
	for _, c := range Checks() {
		if !slices.Contains(names, c.Name) {
			continue
		}
		fs, _, err := c.Run(context.Background(), in)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		all = append(all, fs...)
	}
	return all
}

func findingsText(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

func expectFindings(t *testing.T, fs []Finding, want ...string) {
	t.Helper()
	text := findingsText(fs)
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("findings lack %q; got:\n%s", w, text)
		}
	}
}

// Every check but the API server's passes the good fixture, and the Kyverno
// stage judged its workload.
func TestGoodFixturePasses(t *testing.T) {
	in := inputs(t, "good")
	if fs := run(t, in, "environments", "applications", "appprojects", "pod security", "kyverno policies"); len(fs) != 0 {
		t.Fatalf("good fixture has findings:\n%s", findingsText(fs))
	}
	if n := len(in.Rendered.Objects[in.Repo.Environments[0].Path]); n != 3 {
		t.Errorf("rendered %d objects, want 3", n)
	}
}

// The environment checks: what only the declaration knows.
func TestEnvironmentChecksCatchPlantedProblems(t *testing.T) {
	fs := run(t, inputs(t, "static-failures"), "environments")
	expectFindings(t, fs,
		`Deployment/fixture-dev/web: spec.replicas is 1; environment dev wants 2`,
		`Namespace/fixture-dev: label env="prod" in environment "dev"`,
	)
}

// The workload rules come from the Kyverno policies alone: every policy the
// planted Deployment breaks is a finding that names the object and the
// policy, with the policy's own message (Kyverno reports the first failing
// validation of each policy; test/kyverno has one fixture per rule).
func TestPoliciesCatchPlantedProblems(t *testing.T) {
	fs := run(t, inputs(t, "static-failures"), "kyverno policies")
	expectFindings(t, fs,
		`Deployment/fixture-dev/web: Kyverno disallow-latest-tag-enforce (fail): images must be pinned`,
		`Deployment/fixture-dev/web: Kyverno require-requests-limits-enforce (fail): resources.requests.cpu and resources.requests.memory are required`,
		`Deployment/fixture-dev/web: Kyverno require-probes-enforce (fail): livenessProbe is required`,
		`Deployment/fixture-dev/web: Kyverno restrict-security-context-enforce (fail): containers must run as non-root`,
		`Deployment/fixture-dev/web: Kyverno require-labels-enforce (fail): labels app, env, owner are required; missing: owner`,
	)
	for _, f := range fs {
		if !strings.Contains(f.Where, filepath.Join("static-failures", "app")) {
			t.Errorf("finding not attributed to the entry point: %s", f)
		}
	}
}

// A workload of a kind no policy matches is a finding, not a silent pass.
func TestPoliciesReportUnjudgedWorkloads(t *testing.T) {
	in := inputs(t, "good")
	where := in.Repo.Environments[0].Path
	for _, o := range in.Rendered.Objects[where] {
		if o.GetKind() == "Deployment" {
			// A kind with a pod template the policies do not list.
			o.SetKind("ReplicaSet")
		}
	}
	expectFindings(t, run(t, in, "kyverno policies"), "ReplicaSet/fixture-dev/web: no Kyverno policy judged this workload")
}

// Bad input is reported with the file, never a panic.
func TestRenderErrorsNameTheFile(t *testing.T) {
	for name, want := range map[string]string{
		"bad-yaml":          "deployment.yaml",
		"bad-kustomization": "resourcez",
	} {
		c, _ := fixture(t, name)
		_, fs := Render(c, &gitops.Renderer{})
		if len(fs) == 0 || !strings.Contains(findingsText(fs), want) || !strings.Contains(findingsText(fs), filepath.Join("testdata", name, "app")) {
			t.Errorf("%s: findings %q, want the entry point and %q", name, findingsText(fs), want)
		}
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "platform.yaml")
	os.WriteFile(p, []byte("environments:\n  - name: dev\n    pth: x\n"), 0o644)
	if _, err := gitops.LoadFile(dir, p); err == nil || !strings.Contains(err.Error(), "pth") || !strings.Contains(err.Error(), p) {
		t.Errorf("err %v", err)
	}
}

func TestSecretsInGit(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.yaml"), []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: empty}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "leak.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: hunter2}\n"), 0o644)
	fs := SecretsInGit(dir)
	if len(fs) != 1 || !strings.Contains(fs[0].String(), "leak.yaml: Secret/db") {
		t.Errorf("findings %q", findingsText(fs))
	}
}

// TestServerSideValidation runs the fixtures against a real kube-apiserver
// and etcd, with the Argo CD CRDs from the pinned module installed. Each
// planted fault must fail with a message naming the object.
func TestServerSideValidation(t *testing.T) {
	cluster, err := testcluster.Start(testcluster.Options{CRDDirs: crdDirs(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	t.Logf("kube-apiserver started with %d CRDs in %v", cluster.CRDs, cluster.Started)
	cases := []struct {
		fixture string
		want    []string
	}{
		{"good", nil},
		{"broken-selector", []string{"Deployment/fixture-dev/web", "selector"}},
		{"unknown-field", []string{"Application/fixture-dev/typo", `unknown field "spec.source.pathh"`}},
		{"missing-namespace", []string{"Deployment/fixture-missing/web", `namespace "fixture-missing" does not exist`}},
		{"unknown-kind", []string{"Widget/fixture-dev/w", "no CRD"}},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			c, _ := fixture(t, tc.fixture)
			r, fs := Render(c, &gitops.Renderer{})
			if len(fs) > 0 {
				t.Fatalf("render: %s", findingsText(fs))
			}
			res, fs := Server(context.Background(), cluster.Config, c, r)
			if tc.want == nil {
				if len(fs) != 0 {
					t.Fatalf("good fixture rejected:\n%s", findingsText(fs))
				}
				if res.Validated[c.Environments[0].Path] != 3 {
					t.Errorf("validated %v", res.Validated)
				}
				return
			}
			if len(fs) == 0 {
				t.Fatalf("planted fault in %s was accepted", tc.fixture)
			}
			expectFindings(t, fs, tc.want...)
		})
	}
}

// crdDirs are the CRD directories make test exports (hack/tools.sh crds).
func crdDirs(t *testing.T) []string {
	t.Helper()
	v := os.Getenv("PLATFORMCTL_CRD_DIRS")
	if v == "" {
		t.Fatal("PLATFORMCTL_CRD_DIRS is not set: run `make test`, or export PLATFORMCTL_CRD_DIRS=$(hack/tools.sh crds | paste -sd:)")
	}
	return filepath.SplitList(v)
}

// A policy that does not list a workload's kind leaves it judged by four of
// its mode's five policies: a finding.
func TestPoliciesReportAPolicyThatMissesAKind(t *testing.T) {
	in := inputs(t, "good")
	bundle, err := in.Renderer.Build(in.Repo.Policies)
	if err != nil {
		t.Fatal(err)
	}
	planted := 0
	for _, o := range bundle {
		if !strings.HasPrefix(o.GetName(), "disallow-latest-tag-") {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "matchConstraints", "resourceRules")
		var kept []any
		for _, r := range rules {
			if groups, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "apiGroups"); !slices.Contains(groups, "apps") {
				kept = append(kept, r)
			}
		}
		unstructured.SetNestedSlice(o.Object, kept, "spec", "matchConstraints", "resourceRules")
		planted++
	}
	if planted != 2 {
		t.Fatalf("planted in %d policies, want both modes of disallow-latest-tag", planted)
	}
	expectFindings(t, run(t, in, "kyverno policies"), "Deployment/fixture-dev/web: judged by 4 of the 5 policies of its mode")
}
