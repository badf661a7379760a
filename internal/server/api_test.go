package server

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestPredict(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	status, h, body := ts.do(t, "POST", "/predict", `{"text":"This product is great!"}`, "X-Model-Version", "v1")
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	got := mustJSON[map[string]any](t, body)
	for _, f := range []string{"text", "sentiment", "confidence", "processing_time_ms", "timestamp", "model_version"} {
		if _, ok := got[f]; !ok {
			t.Errorf("response lacks %q: %s", f, body)
		}
	}
	if got["text"] != "This product is great!" || got["sentiment"] != "positive" || got["confidence"] != 0.7 || got["model_version"] != "v1" {
		t.Errorf("unexpected answer: %s", body)
	}
	if _, err := time.Parse(time.RFC3339, got["timestamp"].(string)); err != nil {
		t.Errorf("timestamp: %v", err)
	}
	if h.Get("X-Model-Version") != "v1" || h.Get("X-Request-Id") == "" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers: %v", h)
	}
}

func TestPredictBatch(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	status, h, body := ts.do(t, "POST", "/predict/batch", `{"texts":["I love it","awful service","The box is blue"]}`, "X-Model-Version", "v1")
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	got := mustJSON[batchResponse](t, body)
	want := []string{"positive", "negative", "neutral"}
	if len(got.Predictions) != 3 || got.ModelVersion != "v1" || h.Get("X-Model-Version") != "v1" {
		t.Fatalf("bad batch answer: %s", body)
	}
	for i, p := range got.Predictions {
		if p.Sentiment != want[i] || p.ModelVersion != "v1" {
			t.Errorf("prediction %d = %+v, want %s", i, p, want[i])
		}
	}
	if got.TotalProcessingTimeMS < 0 {
		t.Errorf("total_processing_time_ms %v", got.TotalProcessingTimeMS)
	}
}

// TestBadInput: every client mistake is a 4xx with a JSON error naming what
// was wrong; none is a 5xx.
func TestBadInput(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	long := strings.Repeat("a", 501)
	texts21 := `["` + strings.Repeat(`x","`, 20) + `x"]`
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"invalid json", "POST", "/predict", "application/json", `{"text": "unterminated`, 422, "invalid_json"},
		{"not an object", "POST", "/predict", "application/json", `["a"]`, 422, "invalid_json"},
		{"trailing data", "POST", "/predict", "application/json", `{"text":"ok"} {"text":"again"}`, 422, "invalid_json"},
		{"empty body", "POST", "/predict", "application/json", ``, 422, "invalid_json"},
		{"wrong type", "POST", "/predict", "application/json", `{"text": 42}`, 422, "invalid_field"},
		{"null text", "POST", "/predict", "application/json", `{"text": null}`, 422, "missing_field"},
		{"missing text", "POST", "/predict", "application/json", `{"txt": "hi"}`, 422, "missing_field"},
		{"empty text", "POST", "/predict", "application/json", `{"text": ""}`, 422, "empty_text"},
		{"blank text", "POST", "/predict", "application/json", `{"text": "  \n\t "}`, 422, "empty_text"},
		{"text too long", "POST", "/predict", "application/json", `{"text": "` + long + `"}`, 422, "text_too_long"},
		{"invalid utf-8", "POST", "/predict", "application/json", "{\"text\": \"caf\xe9\"}", 422, "invalid_utf8"},
		{"body too large", "POST", "/predict", "application/json", `{"text": "` + strings.Repeat("a", 70<<10) + `"}`, 413, "body_too_large"},
		{"wrong content type", "POST", "/predict", "text/plain", `{"text":"hi"}`, 415, "unsupported_media_type"},
		{"form content type", "POST", "/predict", "application/x-www-form-urlencoded", `text=hi`, 415, "unsupported_media_type"},
		{"wrong method", "GET", "/predict", "", ``, 405, "method_not_allowed"},
		{"wrong method batch", "DELETE", "/predict/batch", "", ``, 405, "method_not_allowed"},
		{"unknown path", "GET", "/nowhere", "", ``, 404, "not_found"},
		{"batch of 0", "POST", "/predict/batch", "application/json", `{"texts": []}`, 422, "invalid_batch_size"},
		{"batch of 21", "POST", "/predict/batch", "application/json", `{"texts": ` + texts21 + `}`, 422, "invalid_batch_size"},
		{"batch wrong type", "POST", "/predict/batch", "application/json", `{"texts": "one"}`, 422, "invalid_field"},
		{"batch item wrong type", "POST", "/predict/batch", "application/json", `{"texts": ["a", 1]}`, 422, "invalid_field"},
		{"batch item empty", "POST", "/predict/batch", "application/json", `{"texts": ["a", ""]}`, 422, "empty_text"},
		{"batch missing", "POST", "/predict/batch", "application/json", `{}`, 422, "missing_field"},
		{"unknown version", "POST", "/predict", "application/json", `{"text":"hi"}`, 404, "unknown_model_version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, ts.URL+c.path, strings.NewReader(c.body))
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			if c.code == "unknown_model_version" {
				req.Header.Set("X-Model-Version", "v9")
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e errBody
			if err := jsonDecode(resp.Body, &e); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if resp.StatusCode != c.status || e.Error.Code != c.code || e.Error.Message == "" {
				t.Errorf("got %d %q %q, want %d %q", resp.StatusCode, e.Error.Code, e.Error.Message, c.status, c.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	// The limit is inclusive: exactly 500 characters (not bytes) is fine.
	status, _, body := ts.do(t, "POST", "/predict", `{"text": "`+strings.Repeat("é", 500)+`"}`)
	if status != 200 {
		t.Errorf("500 two-byte characters: status %d %s", status, body)
	}
	// The 4xx answers were counted with their codes.
	if !strings.Contains(scrape(t, ts), `inference_requests_total{endpoint="/predict",status="422",version="`) {
		t.Error("422 responses are not counted under their status code")
	}
}

func TestVersionPinning(t *testing.T) {
	ts := newTestServer(t, testOptions{traffic: "v1=100"})
	for _, v := range []string{"v1", "v2"} {
		status, h, body := ts.do(t, "POST", "/predict", `{"text":"fine"}`, "X-Model-Version", v)
		if status != 200 || h.Get("X-Model-Version") != v || mustJSON[predictResponse](t, body).ModelVersion != v {
			t.Errorf("pin %s: status %d header %q body %s", v, status, h.Get("X-Model-Version"), body)
		}
	}
	status, _, body := ts.do(t, "POST", "/predict", `{"text":"fine"}`, "X-Model-Version", "v7")
	e := mustJSON[errBody](t, body)
	if status != 404 || !strings.Contains(e.Error.Message, "v1, v2") {
		t.Errorf("unknown version: %d %s; want 404 naming the available versions", status, body)
	}
}

func TestWeightedSplitAndStickiness(t *testing.T) {
	ts := newTestServer(t, testOptions{traffic: "v1=70,v2=30"})
	const n = 2000
	counts := map[string]int{}
	for i := range n {
		// Distinct users: the split is deterministic per user, spread across users.
		_, h, _ := ts.do(t, "POST", "/predict", `{"text":"ok"}`, "X-User-ID", fmt.Sprintf("user-%d", i))
		counts[h.Get("X-Model-Version")]++
	}
	share := float64(counts["v1"]) / n
	// Binomial sd at p=0.7, n=2000 is 0.010; allow 4 sd.
	if math.Abs(share-0.7) > 0.04 {
		t.Errorf("v1 share %.3f over %d users, want 0.70±0.04 (counts %v)", share, n, counts)
	}
	for _, user := range []string{"alice", "bob", "carol", "dave"} {
		_, h, _ := ts.do(t, "POST", "/predict", `{"text":"ok"}`, "X-User-ID", user)
		first := h.Get("X-Model-Version")
		for range 30 {
			if _, h, _ := ts.do(t, "POST", "/predict", `{"text":"ok"}`, "X-User-ID", user); h.Get("X-Model-Version") != first {
				t.Fatalf("user %s moved from %s to %s", user, first, h.Get("X-Model-Version"))
			}
		}
	}
	// Without a key the split is random but still weighted.
	counts = map[string]int{}
	for range n {
		_, h, _ := ts.do(t, "POST", "/predict", `{"text":"ok"}`)
		counts[h.Get("X-Model-Version")]++
	}
	if share := float64(counts["v1"]) / n; math.Abs(share-0.7) > 0.04 {
		t.Errorf("anonymous v1 share %.3f, want 0.70±0.04", share)
	}
}

func TestModelInfoAndModels(t *testing.T) {
	ts := newTestServer(t, testOptions{traffic: "v1=90,v2=10"})
	status, h, body := ts.do(t, "GET", "/model/info", "", "X-Model-Version", "v2")
	info := mustJSON[map[string]any](t, body)
	if status != 200 || info["version"] != "v2" || h.Get("X-Model-Version") != "v2" || info["model_name"] != "sentiment-analyzer" {
		t.Fatalf("model info: %d %s", status, body)
	}
	for _, f := range []string{"deployed_at", "metrics", "training_date", "run_id"} {
		if _, ok := info[f]; !ok {
			t.Errorf("model info lacks %q", f)
		}
	}
	metrics, _ := info["metrics"].(map[string]any)
	if _, ok := metrics["accuracy"]; !ok {
		t.Errorf("metrics lacks accuracy: %s", body)
	}
	if _, ok := metrics["f1_score"]; !ok {
		t.Errorf("metrics lacks f1_score: %s", body)
	}
	status, _, body = ts.do(t, "GET", "/models", "")
	m := mustJSON[modelsResponse](t, body)
	if status != 200 || len(m.Models) != 3 || m.Traffic["v1"] != 90 || m.Traffic["v2"] != 10 {
		t.Errorf("models: %d %s", status, body)
	}
}

func TestHealthReadyAndRoot(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	status, _, body := ts.do(t, "GET", "/health", "")
	h := mustJSON[healthResponse](t, body)
	if status != 200 || h.Status != "healthy" || h.Service != "ml-inference" || h.Version == "" || h.Timestamp == "" {
		t.Errorf("health: %d %s", status, body)
	}
	if status, _, body := ts.do(t, "GET", "/ready", ""); status != 200 {
		t.Errorf("ready: %d %s", status, body)
	}
	ts.health.StartDraining()
	if status, _, body := ts.do(t, "GET", "/ready", ""); status != 503 || !strings.Contains(string(body), "draining") {
		t.Errorf("ready while draining: %d %s", status, body)
	}
	if status, _, _ := ts.do(t, "GET", "/v2/health/ready", ""); status != 503 {
		t.Errorf("OIP ready while draining: %d", status)
	}
	if status, _, _ := ts.do(t, "GET", "/health", ""); status != 200 {
		t.Errorf("liveness must not fail while draining: %d", status)
	}
}

// TestRootKeepsTheDemoShape: clients written for the original demo read its
// root document, {service, version, status: "running", endpoints: {name:
// path}}; the full route list is under "routes".
func TestRootKeepsTheDemoShape(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	status, _, body := ts.do(t, "GET", "/", "")
	// Decoded into a type of the test's own, so a renamed field in the
	// server's struct cannot pass unnoticed.
	type demoRoot struct {
		Service   string            `json:"service"`
		Version   string            `json:"version"`
		Status    string            `json:"status"`
		Endpoints map[string]string `json:"endpoints"`
		Routes    []struct{ Method, Path, Summary string }
	}
	root := mustJSON[demoRoot](t, body)
	if status != 200 || root.Service != "ml-inference" || root.Version != "test" || root.Status != "running" {
		t.Errorf("root: %d %s", status, body)
	}
	want := map[string]string{
		"health": "/health", "ready": "/ready", "predict": "/predict", "predict_batch": "/predict/batch",
		"model_info": "/model/info", "models": "/models", "metrics": "/metrics",
	}
	for name, path := range want {
		if root.Endpoints[name] != path {
			t.Errorf("endpoints[%q] = %q, want %q", name, root.Endpoints[name], path)
		}
	}
	if len(root.Endpoints) != len(want) {
		t.Errorf("endpoints = %v, want exactly %v", root.Endpoints, want)
	}
	if len(root.Routes) < 17 {
		t.Errorf("routes lists %d endpoints, want every route: %s", len(root.Routes), body)
	}
	for _, rt := range root.Routes {
		if rt.Method == "" || rt.Path == "" || rt.Summary == "" {
			t.Errorf("incomplete route %+v", rt)
		}
	}
}

func TestMetricsExposition(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	ts.do(t, "POST", "/predict", `{"text":"great"}`, "X-Model-Version", "v1")
	ts.do(t, "POST", "/predict", `{"text":""}`, "X-Model-Version", "v1")
	out := scrape(t, ts)
	for _, want := range []string{
		`inference_requests_total{endpoint="/predict",status="200",version="v1"} 1`,
		`inference_requests_total{endpoint="/predict",status="422",version="v1"} 1`,
		`inference_request_duration_seconds_bucket{endpoint="/predict",version="v1",le="0.2"} 2`,
		`model_inference_duration_seconds_count{version="v1"} 1`,
		`model_predictions_total{sentiment="positive",version="v1"} 1`,
		`inference_active_requests 1`, // the scrape itself
		`ml_inference_build_info{`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func scrape(t testing.TB, ts *testServer) string {
	t.Helper()
	_, _, body := ts.do(t, "GET", "/metrics", "")
	return string(body)
}

// TestAPIDocListsEveryRoute: docs/api.md, the written contract, names every
// route of routes.go, and no route that does not exist.
func TestAPIDocListsEveryRoute(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, testOptions{})
	s := newServer(Config{Service: "ml-inference"}, ts.deps)
	want := map[string]bool{}
	for _, rt := range s.apiRoutes() {
		path := rt.path
		if path == "/{$}" {
			path = "/"
		}
		entry := "`" + rt.method + " " + path + "`"
		want[entry] = true
		if !strings.Contains(string(doc), "| "+entry+" |") {
			t.Errorf("docs/api.md does not list %s", entry)
		}
	}
	for _, line := range strings.Split(string(doc), "\n") {
		if m := docRoute.FindStringSubmatch(line); m != nil && !want[m[1]] {
			t.Errorf("docs/api.md lists %s, which routes.go does not serve", m[1])
		}
	}
}

var docRoute = regexp.MustCompile("^\\| (`(?:GET|POST|PUT|DELETE|PATCH) [^`]+`) \\|")
