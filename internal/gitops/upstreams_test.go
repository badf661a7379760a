package gitops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every declared upstream resolves to a directory with a kustomization, in
// the module version tools/crds pins.
func TestUpstreamsResolve(t *testing.T) {
	r, err := Load(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := r.ResolveUpstreams()
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != len(r.Upstreams) || len(dirs) == 0 {
		t.Fatalf("resolved %d of %d", len(dirs), len(r.Upstreams))
	}
	for url, dir := range dirs {
		if !HasKustomization(dir) {
			t.Errorf("%s -> %s: no kustomization", url, dir)
		}
	}
}

// A ?ref= that is not the pinned version is an error naming both, so the
// tag Argo CD fetches and the files verify checks cannot drift apart.
func TestUpstreamRefMustBeThePinnedVersion(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "tools", "crds"), 0o755)
	os.WriteFile(filepath.Join(root, ModulesFile), []byte("module x\n\nrequire (\n\tsigs.k8s.io/metrics-server v0.8.0\n)\n"), 0o644)
	r := &Repository{Root: root, Upstreams: []Upstream{{
		URL: "https://github.com/kubernetes-sigs/metrics-server//manifests/base?ref=v0.7.2", Module: "sigs.k8s.io/metrics-server", Dir: "manifests/base",
	}}}
	_, err := r.ResolveUpstreams()
	if err == nil || !strings.Contains(err.Error(), "must end in ?ref=v0.8.0") {
		t.Errorf("err %v", err)
	}
	r.Upstreams[0].Module = "example.com/unpinned"
	if _, err := r.ResolveUpstreams(); err == nil || !strings.Contains(err.Error(), "does not require example.com/unpinned") {
		t.Errorf("err %v", err)
	}
}
