package bootstrap

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestRootApplicationForAFork(t *testing.T) {
	app, err := RootApplication(filepath.Join("testdata", "root.yaml"), "https://github.com/someone/fork.git", "feature-x")
	if err != nil {
		t.Fatal(err)
	}
	repo, _, _ := unstructured.NestedString(app.Object, "spec", "source", "repoURL")
	rev, _, _ := unstructured.NestedString(app.Object, "spec", "source", "targetRevision")
	path, _, _ := unstructured.NestedString(app.Object, "spec", "source", "path")
	if repo != "https://github.com/someone/fork.git" || rev != "feature-x" || path != "infrastructure/argocd/apps" {
		t.Errorf("source %s %s %s", repo, rev, path)
	}
	out, _ := YAML(app)
	for _, want := range []string{"labelSelector: ml-platform.io/source=this-repo", "/spec/source/repoURL", "/spec/sourceRepos/0", `value: "feature-x"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRootApplicationBadInput(t *testing.T) {
	root := filepath.Join("testdata", "root.yaml")
	for _, c := range []struct{ repo, rev, want string }{
		{"", "main", "--repo is required"},
		{"not a url", "main", "want an https://"},
		{"https://github.com/a/b.git", " ", "--revision is required"},
	} {
		if _, err := RootApplication(root, c.repo, c.rev); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("repo %q rev %q: err %v, want %q", c.repo, c.rev, err, c.want)
		}
	}
	if _, err := RootApplication(filepath.Join("testdata", "missing.yaml"), "git@github.com:a/b.git", "main"); err == nil {
		t.Error("missing root file accepted")
	}
}
