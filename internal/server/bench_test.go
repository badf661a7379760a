package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ml-platform/platform/internal/cputime"
	"github.com/ml-platform/platform/internal/feedback"
	"github.com/ml-platform/platform/internal/registry"
	"github.com/ml-platform/platform/internal/router"
	"github.com/ml-platform/platform/internal/telemetry"
	"github.com/ml-platform/platform/test/loadbench/baseline"
)

const benchBody = `{"text":"The battery life is great but the screen is not bright! :)"}`

// BenchmarkHandler runs POST /predict through the whole handler (middleware,
// metrics, access log to io.Discard, 10% trace sampling) without and with
// feedback tokens (ml-inference, ml-inference+feedback-token: the cost of
// signing one token per prediction) and, as the baseline, a bare handler
// doing the same JSON decode and encode.
func BenchmarkHandler(b *testing.B) {
	log := telemetry.NewLogger(io.Discard, slog.LevelInfo)
	models, err := registry.NewLive(context.Background(), registry.Directory{Root: repoModels}, log)
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))))
	handler := func(keys *feedback.Keys) http.Handler {
		return New(Config{Service: "ml-inference", Version: "bench", StickyHeader: "X-User-ID"}, Deps{
			Models: models, Router: router.New(nil), Metrics: telemetry.NewMetrics(telemetry.BuildInfo{}),
			Logger: log, Tracer: tp, Health: &Health{}, FeedbackKeys: keys,
		})
	}
	for _, h := range []struct {
		name    string
		handler http.Handler
	}{
		{"ml-inference", handler(nil)},
		{"ml-inference+feedback-token", handler(feedbackKeys(b))},
		{"bare-baseline", baseline.Handler()},
	} {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/predict", bytes.NewReader([]byte(benchBody)))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.handler.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkHandlerModels runs POST /predict through the whole handler with
// each model version pinned (X-Model-Version), on a 60- and a 500-character
// text, so the model's share of a request shows next to the rest of the
// handler in one run. hack/bench.sh prints v3's throughput against v2's.
func BenchmarkHandlerModels(b *testing.B) {
	log := telemetry.NewLogger(io.Discard, slog.LevelInfo)
	models, err := registry.NewLive(context.Background(), registry.Directory{Root: repoModels}, log)
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))))
	h := New(Config{Service: "ml-inference", Version: "bench", StickyHeader: "X-User-ID"}, Deps{
		Models: models, Router: router.New(nil), Metrics: telemetry.NewMetrics(telemetry.BuildInfo{}),
		Logger: log, Tracer: tp, Health: &Health{},
	})
	short := "The battery life is great but the screen is not bright! :)" // 60 characters
	long := strings.Repeat("The battery is great, but I would not buy it again: the screen died. ", 8)[:500]
	for _, text := range []struct{ name, body string }{{"60chars", short}, {"500chars", long}} {
		body, _ := json.Marshal(map[string]string{"text": text.body})
		for _, version := range models.Current().Versions() {
			b.Run(text.name+"/"+version, func(b *testing.B) {
				b.ReportAllocs()
				cpu := cputime.Start()
				for b.Loop() {
					req := httptest.NewRequest("POST", "/predict", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("X-Model-Version", version)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
				cpu.Report(b)
			})
		}
	}
}

// BenchmarkHandlerTelemetry is what tracing and the access log cost per
// request in-process: POST /predict through the whole handler with
//
//   - telemetry=off: no access log (logger at error) and no traces
//     (always_off, no exporter): what ml-inference does with --log-level
//     error and OTEL_TRACES_SAMPLER=always_off;
//   - telemetry=on-10%: access log at info (formatted in full, written to
//     io.Discard) and the shipped sampler, parentbased_traceidratio 0.1;
//   - telemetry=on-100%: the same with always_on;
//   - telemetry=access-log-only and telemetry=traces-10%-only: the two
//     halves of on-10% apart.
//
// The "on" cases export as telemetry.NewTracing does: a batch span processor
// with the SDK defaults and the real OTLP/HTTP exporter, sending to an OTLP
// endpoint in the same process (httptest) that reads and discards each
// request. Requests carry no traceparent, so 10% means 10% of new traces.
// spans-exported/op counts spans handed to the exporter (the batch processor
// drops spans when its queue is full); metrics are on in every case.
func BenchmarkHandlerTelemetry(b *testing.B) {
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer endpoint.Close()
	models, err := registry.NewLive(context.Background(), registry.Directory{Root: repoModels}, telemetry.NewLogger(io.Discard, slog.LevelError))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		level   slog.Level
		sampler sdktrace.Sampler
		export  bool
	}{
		{"telemetry=off", slog.LevelError, sdktrace.NeverSample(), false},
		{"telemetry=on-10%", slog.LevelInfo, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(telemetry.DefaultSampleRatio)), true},
		{"telemetry=on-100%", slog.LevelInfo, sdktrace.AlwaysSample(), true},
		// The two halves of on-10%, to see which one costs what.
		{"telemetry=access-log-only", slog.LevelInfo, sdktrace.NeverSample(), false},
		{"telemetry=traces-10%-only", slog.LevelError, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(telemetry.DefaultSampleRatio)), true},
	} {
		b.Run(c.name, func(b *testing.B) {
			opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(c.sampler)}
			exp := &countingExporter{}
			if c.export {
				otlp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(endpoint.URL+"/v1/traces"))
				if err != nil {
					b.Fatal(err)
				}
				exp.SpanExporter = otlp
				opts = append(opts, sdktrace.WithBatcher(exp))
			}
			tp := sdktrace.NewTracerProvider(opts...)
			h := New(Config{Service: "ml-inference", Version: "bench", StickyHeader: "X-User-ID"}, Deps{
				Models: models, Router: router.New(nil), Metrics: telemetry.NewMetrics(telemetry.BuildInfo{}),
				Logger: telemetry.NewLogger(io.Discard, c.level), Tracer: tp, Health: &Health{},
			})
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/predict", bytes.NewReader([]byte(benchBody)))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			if err := tp.Shutdown(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(exp.spans.Load())/float64(b.N), "spans-exported/op")
		})
	}
}

// BenchmarkFeedback runs POST /feedback through the whole handler (as
// BenchmarkHandler runs /predict): verify the token, check and record it in
// the replay store, count it. Every request carries a fresh token, minted
// before the timed loop.
func BenchmarkFeedback(b *testing.B) {
	log := telemetry.NewLogger(io.Discard, slog.LevelInfo)
	models, err := registry.NewLive(context.Background(), registry.Directory{Root: repoModels}, log)
	if err != nil {
		b.Fatal(err)
	}
	keys := feedbackKeys(b)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))))
	const pool = 1 << 16
	bodies := make([][]byte, pool)
	now := time.Now()
	for i := range bodies {
		tok, err := keys.Token(feedback.Claims{RequestID: fmt.Sprintf("%032x", i), Version: "v2", Label: "positive", IssuedAt: now})
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = []byte(`{"feedback_token":"` + tok + `","label":"positive"}`)
	}
	var h http.Handler
	fresh := func() {
		// A new server has an empty replay store: the pool's tokens are
		// new to it.
		h = New(Config{Service: "ml-inference", Version: "bench", Feedback: FeedbackConfig{TokenTTL: time.Hour, ClockSkew: time.Minute, ReplayEntries: pool}},
			Deps{Models: models, Router: router.New(nil), Metrics: telemetry.NewMetrics(telemetry.BuildInfo{}),
				Logger: log, Tracer: tp, Health: &Health{}, FeedbackKeys: keys})
	}
	fresh()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == pool {
			b.StopTimer()
			fresh()
			i = 0
			b.StartTimer()
		}
		req := httptest.NewRequest("POST", "/feedback", bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		i++
	}
}

// countingExporter counts the spans the batch processor hands to the real
// exporter.
type countingExporter struct {
	sdktrace.SpanExporter
	spans atomic.Int64
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.spans.Add(int64(len(spans)))
	return e.SpanExporter.ExportSpans(ctx, spans)
}
