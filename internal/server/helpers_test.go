package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ml-platform/platform/internal/feedback"
	"github.com/ml-platform/platform/internal/registry"
	"github.com/ml-platform/platform/internal/router"
	"github.com/ml-platform/platform/internal/telemetry"
)

// testServer is a real server (real models from the repository, real
// registry, metrics and tracer) behind httptest.
type testServer struct {
	*httptest.Server
	handler http.Handler
	deps    Deps
	models  *registry.Live
	health  *Health
	metrics *telemetry.Metrics
	spans   *tracetest.InMemoryExporter
	logs    *syncBuffer
}

type testOptions struct {
	traffic   string
	modelsDir string
	limits    Limits
	sampleAll bool
	// feedbackKeys enables feedback; feedback configures it (zero: the
	// defaults); now is the server's clock (nil: time.Now).
	feedbackKeys *feedback.Keys
	feedback     FeedbackConfig
	now          func() time.Time
}

// repoModels is the repository's models/ folder.
var repoModels = filepath.Join("..", "..", "models")

func newTestServer(t testing.TB, o testOptions) *testServer {
	t.Helper()
	if o.modelsDir == "" {
		o.modelsDir = repoModels
	}
	logs := &syncBuffer{}
	log := telemetry.NewLogger(logs, slog.LevelInfo)
	models, err := registry.NewLive(context.Background(), registry.Directory{Root: o.modelsDir}, log)
	if err != nil {
		t.Fatal(err)
	}
	weights, err := router.ParseWeights(o.traffic)
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewInMemoryExporter()
	sampler := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(telemetry.DefaultSampleRatio))
	if o.sampleAll {
		sampler = sdktrace.AlwaysSample()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans), sdktrace.WithSampler(sampler))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	ts := &testServer{models: models, health: &Health{}, metrics: telemetry.NewMetrics(telemetry.BuildInfo{Version: "test", Revision: "test"}), spans: spans, logs: logs}
	ts.deps = Deps{Models: models, Router: router.New(weights), Metrics: ts.metrics, Logger: log, Tracer: tp, Health: ts.health,
		FeedbackKeys: o.feedbackKeys, Now: o.now}
	ts.metrics.SetServing(models.Current().Versions(), ts.deps.Router.Split(models.Current()))
	ts.handler = New(Config{Service: "ml-inference", Version: "test", Limits: o.limits, StickyHeader: "X-User-ID", Feedback: o.feedback}, ts.deps)
	ts.Server = httptest.NewServer(ts.handler)
	t.Cleanup(ts.Close)
	return ts
}

// do sends a request and returns the status, headers and body.
func (ts *testServer) do(t testing.TB, method, path string, body string, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

func mustJSON[T any](t testing.TB, data []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// copyModels copies the repository's model artifacts into a temporary
// directory the test can change.
func copyModels(t testing.TB, versions ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, v := range versions {
		copyDir(t, filepath.Join(repoModels, v), filepath.Join(dir, v))
	}
	return dir
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
