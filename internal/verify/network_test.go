package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/gitops"
)

// The repository's own matrix holds against its manifests, and verify prints
// the flow counts per environment.
func TestNetworkMatrixOfTheRepository(t *testing.T) {
	c, r := repository(t)
	fs, perEnv := Network(c, r)
	if len(fs) != 0 {
		t.Fatalf("findings:\n%s", findingsText(fs))
	}
	out := strings.Join(perEnv, "\n")
	for _, env := range []string{"dev", "staging", "prod"} {
		if !strings.Contains(out, env+" ") || !strings.Contains(out, " allowed, ") {
			t.Errorf("output lacks the counts for %s:\n%s", env, out)
		}
	}
	t.Log(out)
}

// A wrong expectation in the matrix is a finding that prints the flow.
func TestNetworkMatrixWrongExpectationFails(t *testing.T) {
	c, r := repository(t)
	data, err := os.ReadFile(c.NetworkMatrix)
	if err != nil {
		t.Fatal(err)
	}
	planted := strings.Replace(string(data), "    port: 5000\n    protocol: TCP\n    expect: allow", "    port: 5000\n    protocol: TCP\n    expect: deny", 1)
	if planted == string(data) {
		t.Fatal("the mlflow flow was not found in the matrix")
	}
	c.NetworkMatrix = filepath.Join(t.TempDir(), "connectivity.yaml")
	if err := os.WriteFile(c.NetworkMatrix, []byte(planted), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, perEnv := Network(c, r)
	if len(fs) != 3 {
		t.Fatalf("%d findings, want one per environment:\n%s", len(fs), findingsText(fs))
	}
	expectFindings(t, fs, `flow "ml-inference-to-model-registry" (prod): ml-inference-prod/{app.kubernetes.io/name=ml-inference} -> ml-platform/{app.kubernetes.io/name=mlflow}:5000/TCP: expected deny, got allow (egress: allowed by ml-inference-prod/ml-inference-egress`)
	if out := strings.Join(perEnv, "\n"); !strings.Contains(out, "1 wrong") {
		t.Errorf("output does not count the wrong flow:\n%s", out)
	}
}

// repository is the real repository, rendered.
func repository(t *testing.T) (*gitops.Repository, *Rendered) {
	t.Helper()
	c, err := gitops.Load(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if c.NetworkMatrix == "" {
		t.Fatal("infrastructure/platform.yaml declares no networkMatrix")
	}
	r, _ := Render(c, &gitops.Renderer{})
	return c, r
}
