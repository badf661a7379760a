package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

func BenchmarkAccessLogLine(b *testing.B) {
	log := NewLogger(io.Discard, slog.LevelInfo)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(WithRequestID(context.Background(), "0123456789abcdef0123456789abcdef"),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("method", "POST"), slog.String("path", "/predict"), slog.String("endpoint", "/predict"),
			slog.Int("status", 200), slog.Float64("duration_ms", 0.123), slog.Int("bytes", 180), slog.String("model_version", "v2"))
	}
}

// TestLineHandlerMatchesJSON: every line is valid JSON with the same content
// slog.JSONHandler would write (time aside), groups and odd strings included.
func TestLineHandlerMatchesJSON(t *testing.T) {
	var ours, std bytes.Buffer
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(WithRequestID(context.Background(), "r1"),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	logs := []func(l *slog.Logger){
		func(l *slog.Logger) { l.InfoContext(ctx, "plain", "n", 3, "f", 0.25, "ok", true) },
		func(l *slog.Logger) {
			l.With("svc", "x").WithGroup("g").Warn("quote\"and\\slash\n\x01 \xff é 😀", "k", "v", "d", time.Second)
		},
		func(l *slog.Logger) {
			l.Error("err", "err", errors.New("boom"), "any", map[string]int{"a": 1}, slog.Group("grp", "a", 1))
		},
		func(l *slog.Logger) { l.Info("empty group", slog.Group("none"), "", nil) },
	}
	for _, f := range logs {
		ours.Reset()
		std.Reset()
		f(NewLogger(&ours, slog.LevelInfo))
		f(slog.New(slog.NewJSONHandler(&std, nil)))
		var a, b map[string]any
		if err := json.Unmarshal(ours.Bytes(), &a); err != nil {
			t.Fatalf("not JSON: %s (%v)", ours.String(), err)
		}
		json.Unmarshal(std.Bytes(), &b)
		for _, m := range []map[string]any{a, b} {
			delete(m, "time")
			delete(m, "trace_id")
			delete(m, "span_id")
			delete(m, "request_id")
		}
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("ours %s\nstd  %s", ours.String(), std.String())
		}
	}
	ours.Reset()
	NewLogger(&ours, slog.LevelInfo).InfoContext(ctx, "with ids")
	if !strings.Contains(ours.String(), `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","request_id":"r1"`) {
		t.Errorf("ids missing: %s", ours.String())
	}
}
