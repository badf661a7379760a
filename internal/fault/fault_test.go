package fault

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestSpread: exactly floor(n*r) of n requests fail, evenly spaced, and the
// rate can be changed and switched off.
func TestSpread(t *testing.T) {
	in := New()
	for range 100 {
		if in.Fail() {
			t.Fatal("a new injector failed a request")
		}
	}
	for _, rate := range []float64{0.2, 0.25, 0.001, 1, 0.333333} {
		if err := in.SetRate(rate); err != nil {
			t.Fatal(err)
		}
		const n = 10_000
		failed, run, maxRun := 0, 0, 0
		for range n {
			if in.Fail() {
				failed++
				run = 0
			} else if run++; run > maxRun {
				maxRun = run
			}
		}
		if want := int(math.Floor(n * rate)); failed != want && failed != want+1 {
			t.Errorf("rate %v: %d of %d failed, want %d", rate, failed, n, want)
		}
		// Evenly spaced: never more successes in a row than 1/rate.
		if rate > 0 && float64(maxRun) > math.Ceil(1/rate) {
			t.Errorf("rate %v: %d successes in a row, more than 1/rate", rate, maxRun)
		}
		if s := in.State(); s.Requests != n || s.Failed != int64(failed) || s.ErrorRate != rate {
			t.Errorf("rate %v: state %+v", rate, s)
		}
	}
	in.SetRate(0)
	for range 100 {
		if in.Fail() {
			t.Fatal("rate 0 failed a request")
		}
	}
	for _, bad := range []float64{-0.1, 1.01, math.NaN(), math.Inf(1)} {
		if err := in.SetRate(bad); err == nil {
			t.Errorf("SetRate(%v) accepted", bad)
		}
	}
}

func TestHandler(t *testing.T) {
	in := New()
	h := in.Handler()
	do := func(method, target, remote string) (int, State) {
		t.Helper()
		r := httptest.NewRequest(method, target, nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var s State
		if w.Code == http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
				t.Fatalf("%s %s: %v: %s", method, target, err, w.Body)
			}
		}
		return w.Code, s
	}
	if code, s := do("PUT", Path+"?error_rate=0.25", "127.0.0.1:5000"); code != 200 || s.ErrorRate != 0.25 {
		t.Errorf("PUT 0.25: %d %+v", code, s)
	}
	if code, s := do("GET", Path, "[::1]:5000"); code != 200 || s.ErrorRate != 0.25 {
		t.Errorf("GET over IPv6 loopback: %d %+v", code, s)
	}
	if code, s := do("PUT", Path+"?latency=50ms", "127.0.0.1:5000"); code != 200 || s.LatencyMS != 50 || s.ErrorRate != 0.25 {
		t.Errorf("PUT latency=50ms: %d %+v (the rate must stay)", code, s)
	}
	if d, _ := in.Decide(); d != 50*time.Millisecond {
		t.Errorf("Decide after latency=50ms: delay %v", d)
	}
	for _, q := range []string{"", "?error_rate=", "?error_rate=2", "?error_rate=-1", "?error_rate=NaN", "?error_rate=x",
		"?latency=", "?latency=-1ms", "?latency=11s", "?latency=fast", "?error_rate=0.5&latency=x", "?error_rate=x&latency=1ms"} {
		if code, _ := do("PUT", Path+q, "127.0.0.1:5000"); code != http.StatusBadRequest {
			t.Errorf("PUT %q: %d, want 400", q, code)
		}
	}
	if code, _ := do("POST", Path+"?error_rate=1", "127.0.0.1:5000"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", code)
	}
	if code, _ := do("PUT", Path+"?error_rate=1", "10.0.0.7:5000"); code != http.StatusForbidden {
		t.Errorf("PUT from a non-loopback client: %d, want 403", code)
	}
	if s := in.State(); s.ErrorRate != 0.25 || s.LatencyMS != 50 {
		t.Errorf("refused requests changed the rate or the latency: %+v", s)
	}
	if code, s := do("PUT", Path+"?error_rate=0&latency=0", "127.0.0.1:5000"); code != 200 || s.LatencyMS != 0 || s.ErrorRate != 0 {
		t.Errorf("PUT both off: %d %+v", code, s)
	}
}

// TestDecide: the delay is the latency set, on every request, and the
// failures follow the rate exactly as Fail does.
func TestDecide(t *testing.T) {
	in := New()
	if d, fail := in.Decide(); d != 0 || fail {
		t.Fatalf("a new injector: delay %v, fail %t", d, fail)
	}
	if err := in.SetLatency(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := in.SetRate(0.5); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for range 10 {
		d, fail := in.Decide()
		if d != 50*time.Millisecond {
			t.Fatalf("delay %v, want 50ms", d)
		}
		if fail {
			failed++
		}
	}
	if failed != 5 {
		t.Errorf("%d of 10 failed at rate 0.5", failed)
	}
	for _, bad := range []time.Duration{-time.Millisecond, MaxLatency + 1} {
		if err := in.SetLatency(bad); err == nil {
			t.Errorf("SetLatency(%v) accepted", bad)
		}
	}
}
