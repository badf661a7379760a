// Package vectortest checks that a committed file of reference test vectors
// is what its generator writes today: a Python script run with the stats
// virtualenv's interpreter ($STATS_PYTHON, hack/venv.sh stats), which pins
// scipy, statsmodels and gbstats. A package's tests compare Go against the
// committed vectors; this check keeps the vectors from drifting away from
// the generator or its pins.
package vectortest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Tolerance is the relative difference between a fresh and the committed
// document put down to rounding: the generators' own arithmetic is
// deterministic, but numpy's CPU-dispatched loops may round a last bit
// differently on another machine, and that is not staleness (a changed case
// or formula moves values by far more).
const Tolerance = 1e-13

// Fresh runs `$STATS_PYTHON script --out TMP` and fails unless TMP is the
// committed file: identical bytes, or the same JSON document with numbers
// within Tolerance. The failure says how to regenerate it (script and
// committed as given, relative to the test's package). Without
// STATS_PYTHON the test is skipped in -short mode and fails otherwise,
// saying how to set it.
func Fresh(t testing.TB, script, committed string) {
	t.Helper()
	python := os.Getenv("STATS_PYTHON")
	if python == "" {
		if testing.Short() {
			t.Skip("STATS_PYTHON is not set (skipped in -short mode)")
		}
		t.Fatal(`STATS_PYTHON is not set: point it at the stats virtualenv's python, e.g.
	export STATS_PYTHON="$(hack/venv.sh stats)/bin/python"
(hack/test.sh does this), or run with -short to skip the freshness check`)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(committed))
	cmd := exec.CommandContext(t.Context(), python, script, "--out", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", python, script, err, stderr.String())
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(fresh, want) {
		return
	}
	if err := Same(fresh, want); err != nil {
		t.Fatalf("%s is stale: %v\nregenerate it (from this package's directory):\n\t%s %s --out %s", committed, err, python, script, committed)
	}
	t.Logf("%s differs from a fresh run only in last-bit rounding (within %g)", committed, Tolerance)
}

// Same compares two JSON documents: numbers to Tolerance (relative), the
// rest exactly. The error names the first differing path.
func Same(fresh, committed []byte) error {
	var x, y any
	for _, d := range []struct {
		raw []byte
		v   *any
	}{{fresh, &x}, {committed, &y}} {
		dec := json.NewDecoder(bytes.NewReader(d.raw))
		dec.UseNumber()
		if err := dec.Decode(d.v); err != nil {
			return err
		}
	}
	return sameValue("$", x, y)
}

func sameValue(path string, fresh, committed any) error {
	switch f := fresh.(type) {
	case map[string]any:
		c, ok := committed.(map[string]any)
		if !ok || len(c) != len(f) {
			return fmt.Errorf("%s: the generator writes %v, the file has %v", path, short(fresh), short(committed))
		}
		for k, fv := range f {
			cv, ok := c[k]
			if !ok {
				return fmt.Errorf("%s.%s: the generator writes it, the file lacks it", path, k)
			}
			if err := sameValue(path+"."+k, fv, cv); err != nil {
				return err
			}
		}
		return nil
	case []any:
		c, ok := committed.([]any)
		if !ok || len(c) != len(f) {
			return fmt.Errorf("%s: the generator writes %v, the file has %v", path, short(fresh), short(committed))
		}
		for i := range f {
			if err := sameValue(fmt.Sprintf("%s[%d]", path, i), f[i], c[i]); err != nil {
				return err
			}
		}
		return nil
	case json.Number:
		c, ok := committed.(json.Number)
		if !ok {
			return fmt.Errorf("%s: the generator writes %v, the file has %v", path, f, short(committed))
		}
		fv, err1 := f.Float64()
		cv, err2 := c.Float64()
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if math.Abs(fv-cv) > Tolerance*math.Max(math.Abs(cv), 1e-300) {
			return fmt.Errorf("%s: the generator writes %v, the file has %v", path, f, c)
		}
		return nil
	}
	if fresh != committed {
		return fmt.Errorf("%s: the generator writes %v, the file has %v", path, short(fresh), short(committed))
	}
	return nil
}

func short(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}
