// Package rules checks the generated alerting and recording rules with the
// real tools that will load them: promtool (Prometheus) and vmalert
// (VictoriaMetrics), both built from pinned modules (hack/tools.sh).
package rules

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var generated = filepath.Join("..", "..", "infrastructure", "base", "observability", "rules", "ml-inference-slos.yaml")

func tool(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run `make test`, or export %s=$(hack/tools.sh path %s)", env, env, map[string]string{"PROMTOOL_BIN": "promtool", "VMALERT_BIN": "vmalert"}[env])
	}
	return p
}

func checkers(t *testing.T) map[string]func(file string) *exec.Cmd {
	promtool, vmalert := tool(t, "PROMTOOL_BIN"), tool(t, "VMALERT_BIN")
	return map[string]func(string) *exec.Cmd{
		"promtool": func(f string) *exec.Cmd { return exec.Command(promtool, "check", "rules", f) },
		"vmalert":  func(f string) *exec.Cmd { return exec.Command(vmalert, "-rule="+f, "-dryRun") },
	}
}

// TestGeneratedRulesLoad: both rule engines accept the committed rules.
func TestGeneratedRulesLoad(t *testing.T) {
	for name, cmd := range checkers(t) {
		if out, err := cmd(generated).CombinedOutput(); err != nil {
			t.Errorf("%s rejects %s: %v\n%s", name, generated, err, out)
		}
	}
}

// TestBrokenRulesAreRejected proves the check can fail: a planted syntax
// error in an alert expression.
func TestBrokenRulesAreRejected(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("groups:\n  - name: planted\n    rules:\n      - alert: Broken\n        expr: sum(rate(inference_requests_total[5m]) > 1\n"), 0o644)
	for name, cmd := range checkers(t) {
		if out, err := cmd(bad).CombinedOutput(); err == nil {
			t.Errorf("%s accepted a broken expression:\n%s", name, out)
		}
	}
}
