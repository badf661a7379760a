package server

import (
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestInjectedFaults: with Deps.Fault set (test builds only), the requests it
// picks fail with a contract 500 on every inference endpoint, in each API's
// error format, and are counted and logged as 5xx like any other; other
// endpoints are untouched.
func TestInjectedFaults(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	var fail atomic.Bool
	deps := ts.deps
	deps.Fault = func() (time.Duration, bool) { return 0, fail.Load() }
	srv := httptest.NewServer(New(Config{Service: "ml-inference", Version: "test"}, deps))
	t.Cleanup(srv.Close)
	ts.Server = srv

	if status, _, body := ts.do(t, "POST", "/predict", `{"text":"fine"}`); status != 200 {
		t.Fatalf("fault off: %d %s", status, body)
	}
	fail.Store(true)
	oip := `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["fine"]}]}`
	for _, c := range []struct{ path, body, want string }{
		{"/predict", `{"text":"fine"}`, `{"error":{"code":"fault_injected","message":`},
		{"/predict/batch", `{"texts":["fine"]}`, `{"error":{"code":"fault_injected","message":`},
		{"/v2/models/sentiment-analyzer/infer", oip, `{"error":"failed on purpose`},
		{"/v2/models/sentiment-analyzer/versions/v1/infer", oip, `{"error":"failed on purpose`},
	} {
		status, _, body := ts.do(t, "POST", c.path, c.body)
		if status != 500 || !strings.HasPrefix(string(body), c.want) {
			t.Errorf("%s with the fault on: %d %s, want 500 %s...", c.path, status, body, c.want)
		}
	}
	for _, path := range []string{"/health", "/ready", "/models", "/v2/health/ready"} {
		if status, _, body := ts.do(t, "GET", path, ""); status != 200 {
			t.Errorf("GET %s with the fault on: %d %s", path, status, body)
		}
	}
	metrics := scrape(t, ts)
	for _, want := range []string{
		`inference_requests_total{endpoint="/predict",status="200",version="v3"} 1`,
		`inference_requests_total{endpoint="/predict",status="500",version="none"} 1`,
		`inference_requests_total{endpoint="/predict/batch",status="500",version="none"} 1`,
		`inference_requests_total{endpoint="/v2/models/{name}/infer",status="500",version="none"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if logs := ts.logs.String(); !strings.Contains(logs, `"path":"/predict","endpoint":"/predict","status":500`) {
		t.Errorf("no access log line for the injected 500:\n%s", logs)
	}
}

// TestInjectedLatency: a delay from Deps.Fault is spent inside the observed
// handler, so the latency histogram records it under the version that then
// serves the request, which succeeds.
func TestInjectedLatency(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	deps := ts.deps
	const delay = 30 * time.Millisecond
	deps.Fault = func() (time.Duration, bool) { return delay, false }
	srv := httptest.NewServer(New(Config{Service: "ml-inference", Version: "test"}, deps))
	t.Cleanup(srv.Close)
	ts.Server = srv

	start := time.Now()
	status, _, body := ts.do(t, "POST", "/predict", `{"text":"fine"}`)
	if took := time.Since(start); status != 200 || took < delay {
		t.Fatalf("with %v injected: %d in %v: %s", delay, status, took, body)
	}
	if status, _, _ := ts.do(t, "GET", "/health", ""); status != 200 {
		t.Errorf("GET /health: %d", status)
	}
	metrics := scrape(t, ts)
	for _, want := range []string{
		// Not within 25 ms, within 50 ms: the injected 30 ms.
		`inference_request_duration_seconds_bucket{endpoint="/predict",version="v3",le="0.025"} 0`,
		`inference_request_duration_seconds_bucket{endpoint="/predict",version="v3",le="0.05"} 1`,
		`inference_requests_total{endpoint="/predict",status="200",version="v3"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
