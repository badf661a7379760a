package verify

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
)

const testRepo = "https://example.com/platform.git"

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func parse(t *testing.T, doc string) render.Object {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, "o.yaml", doc)
	objs, err := gitops.ReadManifests(filepath.Join(dir, "o.yaml"))
	if err != nil || len(objs) != 1 {
		t.Fatalf("parse: %v (%d objects)", err, len(objs))
	}
	return objs[0]
}

// TestProjectsCatchPlantedRefusals: a project that allows only ConfigMaps in
// namespace "team" refuses, and verify reports, a Deployment (kind), a
// ConfigMap in another namespace (destination) and a ClusterRole (cluster
// scope), while the allowed ConfigMap passes.
func TestProjectsCatchPlantedRefusals(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "app"), "kustomization.yaml", "resources: [objs.yaml]\n")
	write(t, filepath.Join(root, "app"), "objs.yaml", `apiVersion: v1
kind: ConfigMap
metadata: {name: allowed}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: elsewhere, namespace: other}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: not-whitelisted}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: "x:1"}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cluster-wide}
`)
	proj := parse(t, `apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: team, namespace: argocd}
spec:
  sourceRepos: [`+testRepo+`]
  destinations: [{server: https://kubernetes.default.svc, namespace: team}]
  namespaceResourceWhitelist: [{group: "", kind: ConfigMap}]
`)
	app := parse(t, `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: team-app, namespace: argocd}
spec:
  project: team
  source: {repoURL: `+testRepo+`, path: app}
  destination: {server: https://kubernetes.default.svc, namespace: team}
`)
	r := &Rendered{Order: []string{"apps"}, Objects: map[string][]render.Object{"apps": {proj, app}}}
	fs, _ := Projects(&gitops.Repository{Root: root, RepoURL: testRepo}, &gitops.Renderer{}, r)
	expectFindings(t, fs,
		`Deployment/not-whitelisted: Application team-app: project team does not allow apps/Deployment in namespaces`,
		`ConfigMap/other/elsewhere: Application team-app: project team has no destination for namespace "other"`,
		`ClusterRole/cluster-wide: Application team-app: project team does not allow cluster-scoped rbac.authorization.k8s.io/ClusterRole "cluster-wide"`,
	)
	if len(fs) != 3 {
		t.Errorf("%d findings; want 3 (the allowed ConfigMap must pass):\n%s", len(fs), findingsText(fs))
	}

	// A project that does not know the repository.
	unstructured.SetNestedStringSlice(proj.Object, []string{"https://example.com/other.git"}, "spec", "sourceRepos")
	fs, _ = Projects(&gitops.Repository{Root: root, RepoURL: testRepo}, &gitops.Renderer{}, r)
	expectFindings(t, fs, "project team does not allow source repository "+testRepo)
}

// TestObservabilityProdOverlayFitsItsProject: a production cluster points
// the observability Application at overlays/observability-prod; everything
// that overlay renders must be allowed by the observability AppProject.
func TestObservabilityProdOverlayFitsItsProject(t *testing.T) {
	root := filepath.Join("..", "..")
	c, err := gitops.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := render.Build(filepath.Join(root, "infrastructure", "argocd", "apps"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range objs {
		if o.GetKind() == "Application" && o.GetName() == "observability" {
			unstructured.SetNestedField(o.Object, "infrastructure/overlays/observability-prod", "spec", "source", "path")
			found = true
		}
	}
	if !found {
		t.Fatal("no observability Application in infrastructure/argocd/apps")
	}
	r := &Rendered{Order: []string{"apps"}, Objects: map[string][]render.Object{"apps": objs}}
	if fs, _ := Projects(c, &gitops.Renderer{}, r); len(fs) > 0 {
		t.Errorf("the observability project refuses the production overlay:\n%s", findingsText(fs))
	}
}
