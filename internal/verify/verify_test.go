package verify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/testcluster"
)

func fixture(t *testing.T, name string) (*Config, string) {
	t.Helper()
	root := filepath.Join("testdata", name)
	c, err := LoadConfig(filepath.Join(root, "verify.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return c.Rooted(root), root
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

func TestStaticGoodFixturePasses(t *testing.T) {
	c, root := fixture(t, "good")
	r, fs := Render(c)
	fs = append(fs, Static(c, root, r)...)
	if len(fs) != 0 {
		t.Fatalf("good fixture has findings:\n%s", findingsText(fs))
	}
	if n := len(r.Objects[c.Environments[0].Path]); n != 2 {
		t.Errorf("rendered %d objects, want 2", n)
	}
}

func TestStaticChecksCatchPlantedProblems(t *testing.T) {
	c, root := fixture(t, "static-failures")
	r, fs := Render(c)
	fs = append(fs, Static(c, root, r)...)
	expectFindings(t, fs,
		`Deployment/fixture-dev/web: container "web": image "nginx:latest" uses :latest`,
		`container "web": resources.requests.cpu is not set`,
		`container "web": resources.limits.memory is not set`,
		`container "web": livenessProbe is not set`,
		`container "web": readinessProbe is not set`,
		`container "web": runAsNonRoot is not true`,
		`container "web": securityContext.readOnlyRootFilesystem must be true`,
		`Deployment/fixture-dev/web: spec.replicas is 1; environment dev wants 2`,
		`Deployment/fixture-dev/web: label "owner" is missing`,
		`Namespace/fixture-dev: label env="prod" in environment "dev"`,
	)
}

// Bad input is reported with the file, never a panic.
func TestRenderErrorsNameTheFile(t *testing.T) {
	for name, want := range map[string]string{
		"bad-yaml":          "deployment.yaml",
		"bad-kustomization": "resourcez",
	} {
		c, _ := fixture(t, name)
		_, fs := Render(c)
		if len(fs) == 0 || !strings.Contains(findingsText(fs), want) || !strings.Contains(findingsText(fs), filepath.Join("testdata", name, "app")) {
			t.Errorf("%s: findings %q, want the entry point and %q", name, findingsText(fs), want)
		}
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "verify.yaml")
	os.WriteFile(p, []byte("environments:\n  - name: dev\n    pth: x\n"), 0o644)
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), "pth") || !strings.Contains(err.Error(), p) {
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
			r, fs := Render(c)
			if len(fs) > 0 {
				t.Fatalf("render: %s", findingsText(fs))
			}
			res, fs := Server(context.Background(), cluster.Config, c, r)
			if tc.want == nil {
				if len(fs) != 0 {
					t.Fatalf("good fixture rejected:\n%s", findingsText(fs))
				}
				if res.Validated[c.Environments[0].Path] != 2 {
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
