// Package kyverno runs `kyverno test` on the fixtures of this directory with
// the pinned CLI and reads its results: every expected result must be Pass
// with reason Ok. The CLI itself passes a test whose resource the policy
// never matched ("Excluded": a kind missing from matchConstraints), so a
// fixture for a new kind (Argo Rollouts' Rollout) would otherwise prove
// nothing; a planted policy without the Rollout rule shows this catches it.
package kyverno

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/testtools"
)

// row is one expected result as `kyverno test -o json` reports it.
type row struct {
	Policy   string `json:"POLICY"`
	Resource string `json:"RESOURCE"`
	Result   string `json:"RESULT"`
	Reason   string `json:"REASON"`
}

// kyvernoTest runs `kyverno test dir` and returns its rows; the CLI prints
// progress lines and one JSON array per test file.
func kyvernoTest(t *testing.T, dir string) ([]row, error) {
	t.Helper()
	bin := testtools.Bin(t, "KYVERNO_BIN", "kyverno")
	var out bytes.Buffer
	cmd := exec.Command(bin, "test", dir, "--remove-color", "-o", "json")
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	var rows []row
	var block []string
	in := false
	for _, line := range strings.Split(out.String(), "\n") {
		switch {
		case line == "[":
			in, block = true, []string{line}
		case in:
			block = append(block, line)
			if line == "]" {
				var rs []row
				if err := json.Unmarshal([]byte(strings.Join(block, "\n")), &rs); err != nil {
					t.Fatalf("kyverno test %s: %v in\n%s", dir, err, strings.Join(block, "\n"))
				}
				rows = append(rows, rs...)
				in = false
			}
		}
	}
	if len(rows) == 0 {
		t.Fatalf("kyverno test %s reported no result (%v):\n%s", dir, runErr, out.String())
	}
	return rows, runErr
}

// notOk lists the rows that are not Pass with reason Ok.
func notOk(rows []row) []string {
	var bad []string
	for _, r := range rows {
		if r.Result != "Pass" || r.Reason != "Ok" {
			bad = append(bad, r.Policy+" "+r.Resource+": "+r.Result+" ("+r.Reason+")")
		}
	}
	return bad
}

func TestFixtures(t *testing.T) {
	rows, err := kyvernoTest(t, ".")
	if err != nil {
		t.Errorf("kyverno test: %v", err)
	}
	if bad := notOk(rows); len(bad) > 0 {
		t.Errorf("%d of %d expected results are not a plain pass (Excluded: the policy never matched the resource; add its kind to the policy's matchConstraints):\n%s",
			len(bad), len(rows), strings.Join(bad, "\n"))
	}
	rollouts := 0
	for _, r := range rows {
		if strings.Contains(r.Resource, "argoproj.io/v1alpha1/Rollout/") {
			rollouts++
		}
	}
	if rollouts != 15 {
		t.Errorf("%d results on Rollouts, want 15 (five policies: a compliant, a failing and an exempt Rollout each)", rollouts)
	}
	t.Logf("%d expected results, all Pass/Ok", len(rows))
}

// TestExcludedIsCaught: require-probes without its Rollout rule still
// "passes" `kyverno test`; the check above reports it.
func TestExcludedIsCaught(t *testing.T) {
	tree := t.TempDir()
	policy, err := os.ReadFile(filepath.Join("..", "..", "infrastructure", "policies", "kyverno", "base", "require-probes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rule := "      - apiGroups: [argoproj.io]\n        apiVersions: [v1alpha1]\n        operations: [CREATE, UPDATE]\n        resources: [rollouts]\n"
	if !bytes.Contains(policy, []byte(rule)) {
		t.Fatalf("require-probes.yaml has no Rollout rule written as\n%s", rule)
	}
	write := func(rel string, data []byte) {
		path := filepath.Join(tree, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("infrastructure/policies/kyverno/base/require-probes.yaml", bytes.Replace(policy, []byte(rule), nil, 1))
	for _, f := range []string{"require-probes/kyverno-test.yaml", "require-probes/fail.yaml", "resources/compliant.yaml",
		"resources/seed-deployment.yaml", "resources/system-namespaces.yaml", "resources/system-namespaces-exception.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		write("test/kyverno/"+f, data)
	}
	rows, _ := kyvernoTest(t, filepath.Join(tree, "test", "kyverno", "require-probes"))
	bad := notOk(rows)
	if len(bad) == 0 || !strings.Contains(strings.Join(bad, "\n"), "Rollout/ml-inference-dev/good-rollout") {
		t.Errorf("a policy that never matches Rollouts was not reported: %q", bad)
	}
}
