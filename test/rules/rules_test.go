// Package rules checks the generated alerting and recording rules with the
// real tools that will load them: promtool (Prometheus) and vmalert
// (VictoriaMetrics), both built from pinned modules (hack/tools.sh).
package rules

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/testtools"
)

var generated = filepath.Join("..", "..", "infrastructure", "base", "observability", "rules", "ml-inference-slos.yaml")

func tool(t *testing.T, env string) string {
	t.Helper()
	return testtools.Bin(t, env, map[string]string{"PROMTOOL_BIN": "promtool", "VMALERT_BIN": "vmalert"}[env])
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

// TestSLOAlertScenarios runs the promtool unit tests of the SLO alerts
// (slo_test.yaml): outage pages within 2 minutes, 0.2% errors ticket without
// paging, 0.05% is silent, a latency regression alerts, 4xx bursts are silent.
func TestSLOAlertScenarios(t *testing.T) {
	promtool := tool(t, "PROMTOOL_BIN")
	if out, err := exec.Command(promtool, "test", "rules", "slo_test.yaml").CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestSLOScenarioHarnessCanFail plants a wrong expectation (silence during a
// full outage) and requires promtool to report it.
func TestSLOScenarioHarnessCanFail(t *testing.T) {
	promtool := tool(t, "PROMTOOL_BIN")
	data, err := os.ReadFile("slo_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(generated)
	planted := strings.Replace(string(data), "../../infrastructure/base/observability/rules/ml-inference-slos.yaml", abs, 1)
	// The first scenario's first expectation becomes "no alert".
	i := strings.Index(planted, "exp_alerts:\n")
	j := strings.Index(planted[i:], "  - eval_time:")
	if i < 0 || j < 0 {
		t.Fatal("cannot find the first expectation to plant a failure in")
	}
	planted = planted[:i] + "exp_alerts: []\n" + planted[i+j:]
	file := filepath.Join(t.TempDir(), "planted_test.yaml")
	os.WriteFile(file, []byte(planted), 0o644)
	out, err := exec.Command(promtool, "test", "rules", file).CombinedOutput()
	if err == nil {
		t.Fatalf("promtool accepted silence during a full outage:\n%s", out)
	}
	// It must fail on the planted expectation, not on a broken file.
	if !strings.Contains(string(out), "exp:[]") || !strings.Contains(string(out), "MLInferenceAvailabilityBudgetBurn") {
		t.Fatalf("promtool failed, but not on the planted expectation:\n%s", out)
	}
}
