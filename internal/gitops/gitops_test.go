package gitops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadTheRepository(t *testing.T) {
	root := filepath.Join("..", "..")
	r, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.EnvironmentNames(), ","); got != "dev,staging,prod" {
		t.Errorf("environments %s", got)
	}
	e, err := r.Environment("prod")
	if err != nil || e.Path != filepath.Join(root, "infrastructure/overlays/prod") {
		t.Errorf("prod: %+v %v", e, err)
	}
	if _, err := r.Environment("qa"); err == nil || !strings.Contains(err.Error(), `unknown environment "qa"`) || !strings.Contains(err.Error(), "dev staging prod") {
		t.Errorf("unknown environment: %v", err)
	}
	if r.Policies == "" || r.NetworkMatrix == "" || r.Rel(r.Policies) != "infrastructure/policies/kyverno" {
		t.Errorf("policies %q, matrix %q", r.Policies, r.NetworkMatrix)
	}
}

// Bad declarations name the file and the field.
func TestLoadErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		"environments:\n  - name: dev\n    pth: x\n": `unknown field "pth"`,
		"repoURL: x\n": `field "environments" must list at least one`,
		"environments:\n  - name: dev\n    path: a\n  - name: dev\n    path: b\n": `environments[1].name "dev" is listed twice`,
		"environments:\n  - path: a\n":                                            `environments[0].name is required`,
		"environments:\n  - name: dev\n    path: a\nentryPoints: [b, c, ./b]\n":   `entryPoints[2] "./b" is listed already (entryPoints[0])`,
		"environments:\n  - name: dev\n    path: a\nentryPoints: [a/]\n":          `entryPoints[0] "a/" is listed already (environments[0].path)`,
	} {
		p := filepath.Join(dir, "platform.yaml")
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := LoadFile(dir, p); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: err %v, want %q and the file", body, err, want)
		}
	}
}

// Each directory is built once; the second Build returns the same objects.
func TestRendererBuildsOnce(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("resources: [cm.yaml]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"), 0o644)
	var r Renderer
	first, err := r.Build(dir)
	if err != nil || len(first) != 1 {
		t.Fatalf("build: %v %d", err, len(first))
	}
	second, err := r.Build(filepath.Join(dir, ".", ""))
	if err != nil || &second[0] != &first[0] || r.Builds != 1 {
		t.Errorf("second build: %v, builds %d, same objects %v", err, r.Builds, &second[0] == &first[0])
	}
	// A failure is cached too, and stays an error naming the entry point.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "kustomization.yaml"), []byte("resources: [missing.yaml]\n"), 0o644)
	for range 2 {
		if _, err := r.Build(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("bad build: %v", err)
		}
	}
	if r.Builds != 2 {
		t.Errorf("%d builds, want 2", r.Builds)
	}
}

// Sources reads spec.source and every spec.sources entry.
func TestSources(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "apps.yaml")
	os.WriteFile(p, []byte(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: single, namespace: argocd}
spec:
  source: {repoURL: https://example.com/r.git, path: a, targetRevision: main}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: multi, namespace: argocd}
spec:
  sources:
    - {repoURL: https://charts.example.com, chart: c, targetRevision: 1.0.0}
    - {repoURL: https://example.com/r.git, path: b}
`), 0o644)
	objs, err := ReadManifests(p)
	if err != nil || len(objs) != 2 {
		t.Fatalf("read: %v %d", err, len(objs))
	}
	single := Sources(objs[0].Unstructured)
	if len(single) != 1 || single[0].Field != "spec.source" || single[0].Path != "a" || single[0].TargetRevision != "main" {
		t.Errorf("single: %+v", single)
	}
	multi := Sources(objs[1].Unstructured)
	if len(multi) != 2 || multi[0].Chart != "c" || multi[1].Field != "spec.sources[1]" {
		t.Errorf("multi: %+v", multi)
	}
	if ours := SourcesFrom(objs[1].Unstructured, "https://example.com/r.git"); len(ours) != 1 || ours[0].Path != "b" {
		t.Errorf("from this repo: %+v", ours)
	}
	if !IsArgo(objs[0].Unstructured, "Application") || IsArgo(objs[0].Unstructured, "AppProject") {
		t.Error("IsArgo")
	}
}
