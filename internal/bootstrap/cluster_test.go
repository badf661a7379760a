package bootstrap

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/testcluster"
)

const repoRoot = "../.."

// What `make cluster` does before the root's first sync, against a real
// kube-apiserver: install Argo CD from infrastructure/argocd/install (its
// CRDs established, every object accepted), generate the local secret
// store's Secrets from platform.yaml (a bcrypt hash that matches the
// password, an RFC 3339 mtime), leave them alone on a second run, and apply
// the root Application pointed at the local apps overlay.
func TestBootstrapOnARealAPIServer(t *testing.T) {
	repo, err := gitops.Load(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	ups, err := repo.ResolveUpstreams()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := (&gitops.Renderer{Upstreams: ups}).Build(repo.Bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.StartForTest(t, testcluster.Options{})
	ctx := context.Background()

	var out bytes.Buffer
	if err := Install(ctx, c.Client, objs, &out); err != nil {
		t.Fatalf("install Argo CD: %v", err)
	}
	for _, o := range objs {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(o.Unstructured), live); err != nil {
			t.Errorf("%s not installed: %v", o.Ref(), err)
		}
	}
	// Installing twice is a no-op, as Argo CD's first sync of the same objects is.
	if err := Install(ctx, c.Client, objs, &out); err != nil {
		t.Fatalf("second install: %v", err)
	}

	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	gen, err := GenerateSecrets(ctx, c.Client, repo.Secrets, rand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(gen) != len(repo.Secrets) || !gen[0].Created {
		t.Fatalf("generated %+v", gen)
	}
	argocd := &corev1.Secret{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: StoreNamespace, Name: "argocd-admin"}, argocd); err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword(argocd.Data["passwordBcrypt"], argocd.Data["password"]); err != nil {
		t.Errorf("passwordBcrypt does not match password: %v", err)
	}
	if _, err := time.Parse(time.RFC3339, string(argocd.Data["passwordMtime"])); err != nil {
		t.Errorf("passwordMtime %q: %v", argocd.Data["passwordMtime"], err)
	}
	grafana := &corev1.Secret{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: StoreNamespace, Name: "grafana-admin"}, grafana); err != nil {
		t.Fatal(err)
	}
	if string(grafana.Data["username"]) != "admin" || len(grafana.Data["password"]) < 24 {
		t.Errorf("grafana-admin: %q, password of %d bytes", grafana.Data["username"], len(grafana.Data["password"]))
	}
	again, err := GenerateSecrets(ctx, c.Client, repo.Secrets, rand.Reader, now.Add(time.Hour))
	if err != nil || again[0].Created || again[1].Created {
		t.Errorf("second run: %+v %v", again, err)
	}
	after := &corev1.Secret{}
	c.Client.Get(ctx, client.ObjectKey{Namespace: StoreNamespace, Name: "argocd-admin"}, after)
	if !bytes.Equal(after.Data["password"], argocd.Data["password"]) {
		t.Error("a second bootstrap rotated the password")
	}

	app, err := RootApplication(filepath.Join(repoRoot, gitops.RootFile), "https://github.com/someone/fork.git", "main")
	if err != nil {
		t.Fatal(err)
	}
	unstructured.SetNestedField(app.Object, "infrastructure/local/apps", "spec", "source", "path")
	if err := Apply(ctx, c.Kubeconfig, app); err != nil {
		t.Fatalf("apply the root (the Application CRD came with the install): %v", err)
	}
}

// Generators fail clearly on a declaration they cannot follow.
func TestGenerateBadSpec(t *testing.T) {
	for spec, want := range map[string]gitops.StoreSecret{
		"unknown generator": {Name: "s", Keys: map[string]string{"k": "uuid"}},
		`bcrypt of "nope"`:  {Name: "s", Keys: map[string]string{"h": "bcrypt:nope"}},
	} {
		if _, err := generate(want, rand.Reader, time.Now()); err == nil || !strings.Contains(err.Error(), spec) {
			t.Errorf("%+v: err %v, want %q", want, err, spec)
		}
	}
}

// A private fork's token becomes an Argo CD repository Secret.
func TestRepositorySecret(t *testing.T) {
	s, err := RepositorySecret("https://github.com/me/platform.git", "git", "tok\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.Labels["argocd.argoproj.io/secret-type"] != "repository" || s.StringData["password"] != "tok" || s.StringData["url"] != "https://github.com/me/platform.git" {
		t.Errorf("%+v", s)
	}
	if _, err := RepositorySecret("https://github.com/me/platform.git", "git", " "); err == nil {
		t.Error("an empty token was accepted")
	}
}
