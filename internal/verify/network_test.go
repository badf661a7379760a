package verify

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The repository's own matrix holds against its manifests, and verify prints
// the flow counts per environment.
func TestNetworkMatrixOfTheRepository(t *testing.T) {
	c, r := repository(t)
	var out bytes.Buffer
	if fs := Network(c, r, &out); len(fs) != 0 {
		t.Fatalf("findings:\n%s", findingsText(fs))
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		if !strings.Contains(out.String(), "network: "+env+": ") || !strings.Contains(out.String(), " allowed, ") {
			t.Errorf("output lacks the counts for %s:\n%s", env, out.String())
		}
	}
	t.Log(out.String())
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
	var out bytes.Buffer
	fs := Network(c, r, &out)
	if len(fs) != 3 {
		t.Fatalf("%d findings, want one per environment:\n%s", len(fs), findingsText(fs))
	}
	expectFindings(t, fs, `flow "ml-inference-to-model-registry" (prod): ml-inference-prod/{app.kubernetes.io/name=ml-inference} -> ml-platform/{app.kubernetes.io/name=mlflow}:5000/TCP: expected deny, got allow (egress: allowed by ml-inference-prod/ml-inference-egress`)
	if !strings.Contains(out.String(), "1 wrong") {
		t.Errorf("output does not count the wrong flow:\n%s", out.String())
	}
}

func repository(t *testing.T) (*Config, *Rendered) {
	t.Helper()
	root := filepath.Join("..", "..")
	c, err := LoadConfig(filepath.Join(root, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	c = c.Rooted(root)
	if c.NetworkMatrix == "" {
		t.Fatal("infrastructure/verify.yaml declares no networkMatrix")
	}
	r, _ := Render(c)
	return c, r
}
