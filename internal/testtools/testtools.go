// Package testtools finds the third-party binaries that tests run (Kyverno,
// gitleaks, promtool, VictoriaMetrics, amtool, the OpenTelemetry Collector).
// They are built from the pinned modules under tools/ by hack/tools.sh, and
// hack/test.sh passes their paths in environment variables; a test run
// without them fails with the command that builds the missing one, never
// skips.
package testtools

import (
	"os"
	"testing"
)

// Bin returns the path in the environment variable env, which
// `hack/tools.sh path tool` prints, or fails the test saying so.
func Bin(t testing.TB, env, tool string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run `make test`, or export %s=\"$(hack/tools.sh path %s)\" (built from tools/ on first use)", env, env, tool)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v: rebuild it with hack/tools.sh path %s", env, p, err, tool)
	}
	return p
}
