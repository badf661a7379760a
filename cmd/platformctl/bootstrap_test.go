package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/bootstrap"
	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/testcluster"
	"github.com/ml-platform/platform/internal/verify"
)

// TestBootstrapOutputIsAccepted: the root Application printed for a fork is
// valid for the real Application CRD (strict field validation on
// kube-apiserver), and points at the fork.
func TestBootstrapOutputIsAccepted(t *testing.T) {
	chdirRepo(t)
	var out strings.Builder
	err := run(context.Background(), []string{"bootstrap", "--repo", "https://github.com/someone/platform-fork.git", "--revision", "v1.2.3"}, os.Getenv, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "repoURL: https://github.com/someone/platform-fork.git") {
		t.Fatalf("output does not point at the fork:\n%s", out.String())
	}
	file := filepath.Join(t.TempDir(), "root.yaml")
	os.WriteFile(file, []byte(out.String()), 0o644)
	objs, err := gitops.ReadManifests(file)
	if err != nil {
		t.Fatal(err)
	}
	dirs := filepath.SplitList(os.Getenv("PLATFORMCTL_CRD_DIRS"))
	if len(dirs) == 0 {
		t.Fatal("PLATFORMCTL_CRD_DIRS is not set: run `make test`")
	}
	cluster, err := testcluster.Start(testcluster.Options{CRDDirs: dirs})
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	r := &verify.Rendered{Order: []string{file}, Objects: map[string][]render.Object{file: objs}, Env: map[string]gitops.Environment{}}
	_, fs := verify.Server(context.Background(), cluster.Config, &gitops.Repository{ExternalNamespaces: []string{"argocd"}}, r)
	if len(fs) != 0 {
		t.Fatalf("bootstrap output rejected: %v", fs)
	}
}

// TestBootstrapPatchesRepointChildren applies the root Application's
// Kustomize patches the way Argo CD does (as patches of a kustomization over
// infrastructure/argocd/apps) and checks that every child from this
// repository, and every project, now names the fork.
func TestBootstrapPatchesRepointChildren(t *testing.T) {
	chdirRepo(t)
	const fork = "https://github.com/someone/platform-fork.git"
	app, err := bootstrap.RootApplication(gitops.RootFile, fork, "v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	patches, _, _ := unstructured.NestedSlice(app.Object, "spec", "source", "kustomize", "patches")
	// Kustomize takes only relative paths: the overlay lives in bin/ (ignored).
	os.MkdirAll("bin", 0o755)
	dir, err := os.MkdirTemp("bin", "bootstrap-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	k := map[string]any{"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
		"resources": []any{"../../infrastructure/argocd/apps"}, "patches": patches}
	data, _ := yaml.Marshal(k)
	os.WriteFile(filepath.Join(dir, "kustomization.yaml"), data, 0o644)
	objs, err := render.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	children, projects := 0, 0
	for _, o := range objs {
		switch o.GetKind() {
		case "Application":
			if o.GetLabels()[gitops.ForkLabel] != "this-repo" {
				continue
			}
			children++
			repo, _, _ := unstructured.NestedString(o.Object, "spec", "source", "repoURL")
			rev, _, _ := unstructured.NestedString(o.Object, "spec", "source", "targetRevision")
			if repo != fork || rev != "v9.9.9" {
				t.Errorf("%s still syncs %s@%s", o.Ref(), repo, rev)
			}
		case "AppProject":
			projects++
			repos, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "sourceRepos")
			if len(repos) == 0 || repos[0] != fork {
				t.Errorf("%s sourceRepos %v", o.Ref(), repos)
			}
		}
	}
	if children < 3 || projects == 0 {
		t.Errorf("re-pointed %d child Applications and %d projects; want the three environments and the projects", children, projects)
	}
}
