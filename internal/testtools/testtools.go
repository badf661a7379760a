// Package testtools finds the third-party binaries that tests run (Kyverno,
// gitleaks, promtool, VictoriaMetrics, amtool, the OpenTelemetry Collector,
// the simulated cluster's controllers). They are built from the pinned
// modules under tools/ by hack/tools.sh, and hack/test.sh passes their paths
// in environment variables; a test run without them fails with the command
// that builds the missing one, never skips.
package testtools

import (
	"fmt"
	"os"
	"testing"
)

// Path returns the path in the environment variable env, which
// `hack/tools.sh path tool` prints, or an error saying how to set it.
func Path(env, tool string) (string, error) {
	p := os.Getenv(env)
	if p == "" {
		return "", fmt.Errorf("%s is not set: run `make test`, or export %s=\"$(hack/tools.sh path %s)\" (built from tools/ on first use)", env, env, tool)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s=%s: %w: rebuild it with hack/tools.sh path %s", env, p, err, tool)
	}
	return p, nil
}

// Bin is Path for tests: it fails the test instead of returning an error.
func Bin(t testing.TB, env, tool string) string {
	t.Helper()
	p, err := Path(env, tool)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
