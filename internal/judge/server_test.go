package judge

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ml-platform/platform/internal/registry"
	"github.com/ml-platform/platform/internal/router"
	inference "github.com/ml-platform/platform/internal/server"
	"github.com/ml-platform/platform/internal/telemetry"
)

// deadAddress is a loopback address nothing listens on.
func deadAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

type testJudge struct {
	*httptest.Server
	health  *Health
	metrics *Metrics
}

// startJudge serves the judge's handler for the namespaces on a loopback
// port, reading from the backend at backendURL; now nil is time.Now.
func startJudge(t *testing.T, backendURL string, namespaces []string, now func() time.Time) *testJudge {
	t.Helper()
	backend, err := NewBackend(backendURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	j := &testJudge{health: &Health{}, metrics: NewMetrics(namespaces)}
	h, err := NewHandler(Deps{Backend: backend, Policy: DefaultPolicy, Namespaces: namespaces, Metrics: j.metrics,
		Logger: telemetry.NewLogger(io.Discard, slog.LevelDebug), Health: j.health, BackendTimeout: 5 * time.Second, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	j.Server = httptest.NewServer(h)
	t.Cleanup(j.Close)
	return j
}

func (j *testJudge) get(t *testing.T, method, path string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, j.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := j.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// apiError decodes the one error shape, failing the test on anything else.
func apiError(t *testing.T, body []byte) (code, message, param string) {
	t.Helper()
	var e errorBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("error body %s is not {\"error\":{\"code\",\"message\"}}: %v", body, err)
	}
	return e.Error.Code, e.Error.Message, e.Error.Parameter
}

func TestBadRequestsAre400sNamingTheParameter(t *testing.T) {
	j := startJudge(t, deadAddress(t), testNamespaces, nil)
	ok := "namespace=ml-inference-prod&canary=7c9d8b6f5&stable=58f4d9c7b"
	for _, c := range []struct {
		query, param string
	}{
		{"canary=7c9d8b6f5&stable=58f4d9c7b", "namespace"},
		{"namespace=ml-inference-prod&canary=7C9D&stable=58f4d9c7b", "canary"},
		{ok + "&window=soon", "window"},
		{ok + "&step=2h", "step"},
		{ok + "&namespace=ml-inference-dev", "namespace"},
		{ok + "&verbose=1", "verbose"},
		{"namespace=%zz", "query"},
	} {
		status, header, body := j.get(t, "GET", "/v1/judge?"+c.query)
		if status != http.StatusBadRequest || header.Get("Content-Type") != "application/json" {
			t.Errorf("?%s: %d %s, want a JSON 400", c.query, status, body)
			continue
		}
		code, msg, param := apiError(t, body)
		if code != "invalid_parameter" || param != c.param || !strings.Contains(msg, c.param) {
			t.Errorf("?%s: %s %q (parameter %q), want invalid_parameter naming %q", c.query, code, msg, param, c.param)
		}
	}
	// The backend was never asked: a client's mistake is not the backend's.
	if n := counterValue(t, j.metrics, "judge_backend_request_duration_seconds", "outcome", "error"); n != 0 {
		t.Errorf("bad requests reached the backend %v times", n)
	}
}

func TestUnknownRoutesAndMethodsAreJSON(t *testing.T) {
	j := startJudge(t, deadAddress(t), testNamespaces, nil)
	status, _, body := j.get(t, "GET", "/v1/verdict")
	if code, _, _ := apiError(t, body); status != http.StatusNotFound || code != "not_found" {
		t.Errorf("GET /v1/verdict: %d %s, want a JSON 404", status, body)
	}
	status, header, body := j.get(t, "POST", "/v1/judge")
	if code, _, _ := apiError(t, body); status != http.StatusMethodNotAllowed || code != "method_not_allowed" || header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /v1/judge: %d %s (Allow %q), want a JSON 405 allowing GET, HEAD", status, body, header.Get("Allow"))
	}
}

// TestDeadBackend: with nothing at the backend's address the judge is live
// but not ready, and a judgement is a 502 (its fault, which Argo Rollouts
// counts as a measurement error), never a verdict.
func TestDeadBackend(t *testing.T) {
	j := startJudge(t, deadAddress(t), testNamespaces, nil)
	if status, _, body := j.get(t, "GET", "/healthz"); status != http.StatusOK {
		t.Errorf("/healthz: %d %s, want 200", status, body)
	}
	status, _, body := j.get(t, "GET", "/readyz")
	if code, msg, _ := apiError(t, body); status != http.StatusServiceUnavailable || code != "backend_unavailable" || !strings.Contains(msg, "connection refused") {
		t.Errorf("/readyz: %d %s, want a 503 saying the backend refused", status, body)
	}
	status, _, body = j.get(t, "GET", "/v1/judge?namespace=ml-inference-prod&canary=7c9d8b6f5&stable=58f4d9c7b")
	if code, _, _ := apiError(t, body); status != http.StatusBadGateway || code != "backend_unavailable" {
		t.Errorf("/v1/judge: %d %s, want a JSON 502", status, body)
	}
	if n := counterValue(t, j.metrics, "judge_http_responses_total", "code", "502"); n != 1 {
		t.Errorf("judge_http_responses_total{code=\"502\"} = %v, want 1", n)
	}
	if n := counterValue(t, j.metrics, "judge_verdicts_total", "verdict", "inconclusive"); n != 0 {
		t.Errorf("a backend failure was counted as a verdict (%v)", n)
	}
	j.health.StartDraining()
	status, _, body = j.get(t, "GET", "/readyz")
	if code, _, _ := apiError(t, body); status != http.StatusServiceUnavailable || code != "draining" {
		t.Errorf("/readyz while draining: %d %s, want 503 draining", status, body)
	}
}

// counterValue sums the samples of a family whose label has the value.
func counterValue(t *testing.T, m *Metrics, family, label, value string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					// The getters of the kinds a sample is not return 0.
					sum += s.GetCounter().GetValue() + s.GetGauge().GetValue() + float64(s.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return sum
}

func TestNewHandlerRefusesBadDeps(t *testing.T) {
	backend, err := NewBackend("http://127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	good := Deps{Backend: backend, Policy: DefaultPolicy, Namespaces: testNamespaces, Metrics: NewMetrics(testNamespaces),
		Logger: telemetry.NewLogger(io.Discard, slog.LevelInfo), Health: &Health{}, BackendTimeout: time.Second}
	if _, err := NewHandler(good); err != nil {
		t.Fatalf("good deps: %v", err)
	}
	for name, bad := range map[string]func(d *Deps){
		"alpha":         func(d *Deps) { d.Policy.Alpha = 1 },
		"tolerance":     func(d *Deps) { d.Policy.LatencyTolerance = 0.4 },
		"margin":        func(d *Deps) { d.Policy.ErrorMargin = -1 },
		"min requests":  func(d *Deps) { d.Policy.MinRequests = 0 },
		"ceiling":       func(d *Deps) { d.Policy.StableErrorCeiling = 0 },
		"no namespaces": func(d *Deps) { d.Namespaces = nil },
		"bad namespace": func(d *Deps) { d.Namespaces = []string{"Prod"} },
		"no timeout":    func(d *Deps) { d.BackendTimeout = 0 },
		"no backend":    func(d *Deps) { d.Backend = nil },
	} {
		d := good
		bad(&d)
		if _, err := NewHandler(d); err == nil {
			t.Errorf("%s: NewHandler accepted it", name)
		}
	}
	for _, u := range []string{"", "victoria-metrics:8428", "ftp://vm:8428", "http://"} {
		if _, err := NewBackend(u, nil); err == nil {
			t.Errorf("NewBackend(%q) accepted it", u)
		}
	}
}

// TestEndpointsMatchTheServer checks the judge's endpoint matcher against
// the real ml-inference server: it selects exactly the endpoints the server
// counts as inference (those whose 5xx series it creates at start), and no
// other route (probes, metrics, metadata).
func TestEndpointsMatchTheServer(t *testing.T) {
	log := telemetry.NewLogger(io.Discard, slog.LevelInfo)
	models, err := registry.NewLive(context.Background(), registry.Directory{Root: filepath.Join("..", "..", "models")}, log)
	if err != nil {
		t.Fatal(err)
	}
	metrics := telemetry.NewMetrics(telemetry.BuildInfo{Version: "test", Revision: "test"})
	h := inference.New(inference.Config{Service: "ml-inference", Version: "test"}, inference.Deps{
		Models: models, Router: router.New(nil), Metrics: metrics, Logger: log, Tracer: noop.NewTracerProvider(), Health: &inference.Health{}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var root struct {
		Routes []struct{ Path string } `json:"routes"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &root); err != nil || len(root.Routes) == 0 {
		t.Fatalf("GET /: %v %s", err, rec.Body)
	}
	inferenceSeries := map[string]bool{}
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != requestsFamily {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			// GET / above made a 200 series; the 5xx ones are the
			// server's own, made at start.
			if strings.HasPrefix(labels[statusLabel], "5") {
				inferenceSeries[labels["endpoint"]] = true
			}
		}
	}
	if len(inferenceSeries) < 4 {
		t.Fatalf("the server created 5xx series for %v; want its four inference endpoints", inferenceSeries)
	}
	// A PromQL =~ matcher is anchored at both ends.
	m := regexp.MustCompile(`endpoint=~"(.*)"`).FindStringSubmatch(inferenceEndpoints)
	re := regexp.MustCompile("^(?:" + m[1] + ")$")
	for _, r := range root.Routes {
		if got, want := re.MatchString(r.Path), inferenceSeries[r.Path]; got != want {
			t.Errorf("route %s: the judge's matcher selects it: %v; the server counts it as inference: %v", r.Path, got, want)
		}
	}
	for e := range inferenceSeries {
		if !re.MatchString(e) {
			t.Errorf("inference endpoint %s is not selected", e)
		}
	}
}

// TestQueriesNameTheContractsMetrics: the families the judge reads are
// ml-inference's instruments, with the labels it selects on.
func TestQueriesNameTheContractsMetrics(t *testing.T) {
	have := map[string][]string{}
	for _, in := range telemetry.NewMetrics(telemetry.BuildInfo{}).Instruments() {
		for _, s := range in.Series() {
			have[s] = in.Labels
		}
	}
	for _, f := range []string{requestsFamily, bucketFamily, sumFamily} {
		labels, ok := have[f]
		if !ok {
			t.Errorf("%s is not one of ml-inference's series", f)
			continue
		}
		if !strings.Contains(strings.Join(labels, ","), "endpoint") {
			t.Errorf("%s has labels %v, no endpoint", f, labels)
		}
	}
	qr, qb, qs := queries(Request{Namespace: "ml-inference-prod", Canary: "7c9d8b6f5", Stable: "58f4d9c7b"})
	for _, q := range []string{qr, qb, qs} {
		for _, want := range []string{`namespace="ml-inference-prod"`, hashLabel + `=~"7c9d8b6f5|58f4d9c7b"`, inferenceEndpoints, "[5m]"} {
			if !strings.Contains(q, want) {
				t.Errorf("query %s lacks %s", q, want)
			}
		}
	}
}
