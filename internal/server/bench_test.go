package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ml-platform/platform/internal/registry"
	"github.com/ml-platform/platform/internal/router"
	"github.com/ml-platform/platform/internal/telemetry"
)

const benchBody = `{"text":"The battery life is great but the screen is not bright! :)"}`

// BenchmarkHandler runs POST /predict through the whole handler (middleware,
// metrics, access log to io.Discard, 10% trace sampling) and, as the
// baseline, a bare handler doing the same JSON decode and encode.
func BenchmarkHandler(b *testing.B) {
	log := telemetry.NewLogger(io.Discard, slog.LevelInfo)
	models, err := registry.NewLive(context.Background(), registry.Directory{Root: repoModels}, log)
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))))
	full := New(Config{Service: "ml-inference", Version: "bench", StickyHeader: "X-User-ID"}, Deps{
		Models: models, Router: router.New(nil), Metrics: telemetry.NewMetrics(telemetry.BuildInfo{}),
		Logger: log, Tracer: tp, Health: &Health{},
	})
	for _, h := range []struct {
		name    string
		handler http.Handler
	}{{"ml-inference", full}, {"bare-baseline", BareHandler()}} {
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
