// Package cluster checks the pieces of `make cluster` (hack/cluster.sh) that
// do not need Docker: the scripts parse (and pass shellcheck where it is
// installed), the kind configuration is one the pinned kind accepts, with
// its release's node image and a zone on every node, and Argo CD is
// installed from the same kustomization its Application syncs. What needs a
// Docker engine (kind create cluster, kind load) is not run here; the
// bootstrap steps after it run against a real kube-apiserver in
// internal/bootstrap.
package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/gitops"
)

const repoRoot = "../.."

var scripts = []string{"hack/cluster.sh", "hack/image.sh"}

func TestScriptsParse(t *testing.T) {
	for _, s := range scripts {
		if out, err := exec.Command("bash", "-n", filepath.Join(repoRoot, s)).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
	}
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Log("shellcheck is not installed: bash -n only")
		return
	}
	for _, s := range scripts {
		if out, err := exec.Command(sc, filepath.Join(repoRoot, s)).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", s, err, out)
		}
	}
}

// bash -n catches what it should (the harness can fail).
func TestBashNCatchesASyntaxError(t *testing.T) {
	f := filepath.Join(t.TempDir(), "broken.sh")
	os.WriteFile(f, []byte("if true; then\n  echo\n"), 0o644)
	if err := exec.Command("bash", "-n", f).Run(); err == nil {
		t.Error("bash -n passed an unterminated if")
	}
}

func loadKindConfig(t *testing.T, data []byte) (*v1alpha4.Cluster, error) {
	t.Helper()
	var c v1alpha4.Cluster
	err := yaml.UnmarshalStrict(data, &c)
	return &c, err
}

func TestKindConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "infrastructure", "local", "kind.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadKindConfig(t, data)
	if err != nil {
		t.Fatalf("infrastructure/local/kind.yaml: %v", err)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Errorf("kind %q apiVersion %q", c.Kind, c.APIVersion)
	}
	zones := map[string]bool{}
	for i, n := range c.Nodes {
		if n.Image != defaults.Image {
			t.Errorf("nodes[%d].image %s; the pinned kind's node image is %s (bump them together)", i, n.Image, defaults.Image)
		}
		z := n.Labels["topology.kubernetes.io/zone"]
		if z == "" {
			t.Errorf("nodes[%d] has no topology.kubernetes.io/zone label", i)
		}
		zones[z] = true
	}
	if len(zones) < 2 {
		t.Errorf("zones %v: want at least two, so zone spread is exercised", zones)
	}
	// A field kind does not know is refused (the strict parse can fail).
	if _, err := loadKindConfig(t, append(data, []byte("nodez: []\n")...)); err == nil {
		t.Error("an unknown field passed")
	}
}

// Argo CD is installed at bootstrap from the path the argocd Application
// syncs: one source for its settings.
func TestArgoCDInstallIsTheApplicationsPath(t *testing.T) {
	repo, err := gitops.Load(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := gitops.ReadManifests(filepath.Join(repoRoot, "infrastructure", "argocd", "apps", "argocd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path, _, _ := unstructured.NestedString(objs[0].Object, "spec", "source", "path")
	if repo.Rel(repo.Bootstrap) != path {
		t.Errorf("platform.yaml bootstrap %s, argocd Application path %s: Argo CD would be installed with other settings than it syncs", repo.Rel(repo.Bootstrap), path)
	}
	script, _ := os.ReadFile(filepath.Join(repoRoot, "hack", "cluster.sh"))
	for _, want := range []string{"--install-argocd", "--secrets", "--path infrastructure/local/apps", "infrastructure/local/kind.yaml"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("hack/cluster.sh lacks %q", want)
		}
	}
}
