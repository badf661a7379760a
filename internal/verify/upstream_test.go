package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/gitops"
)

// Argo CD's own manifests ship NetworkPolicies, among them argocd-server's
// `ingress: [{}]` that admits every pod of the cluster. Rendered offline
// from the pinned module, they reach the network matrix like everything
// else: without the patch that drops them, the matrix's "another namespace
// -> argocd-server: deny" fails, naming the upstream policy.
func TestUpstreamArgoCDPoliciesReachTheMatrix(t *testing.T) {
	repo, err := gitops.Load(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ups, err := repo.ResolveUpstreams()
	if err != nil {
		t.Fatal(err)
	}
	rr := &gitops.Renderer{Upstreams: ups}
	r, fs := Render(repo, rr)
	if len(fs) > 0 {
		t.Fatalf("render: %s", findingsText(fs))
	}
	if got, _ := Network(repo, r); len(got) != 0 {
		t.Fatalf("the repository's matrix fails:\n%s", findingsText(got))
	}

	// The same install without the patch that deletes upstream's policies.
	planted := filepath.Join(t.TempDir(), "install")
	if err := os.CopyFS(planted, os.DirFS(repo.Bootstrap)); err != nil {
		t.Fatal(err)
	}
	k := filepath.Join(planted, "kustomization.yaml")
	data, _ := os.ReadFile(k)
	text := string(data)
	start := strings.Index(text, "  - target: {group: networking.k8s.io, kind: NetworkPolicy}")
	end := strings.Index(text, "  # Pruning Argo CD's CRDs")
	if start < 0 || end < start {
		t.Fatal("the NetworkPolicy delete patch is not where this test expects it")
	}
	os.WriteFile(k, []byte(text[:start]+text[end:]), 0o644)
	// The copy sits elsewhere: its remote base resolves the same way.
	objs, err := rr.Build(planted)
	if err != nil {
		t.Fatal(err)
	}
	r.Objects[repo.Bootstrap] = objs
	got, _ := Network(repo, r)
	expectFindings(t, got,
		`flow "other-namespace-to-argocd-server" (dev)`,
		`allowed by argocd/argocd-server-network-policy`,
	)
}
