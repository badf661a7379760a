package server

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestTraceLogCorrelation: the server continues the caller's W3C trace, emits
// a server span with preprocess/inference/postprocess children carrying the
// required attributes, and the access log line has the same trace and span id.
func TestTraceLogCorrelation(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + traceID + "-00f067aa0ba902b7-01" // sampled by the caller
	status, h, body := ts.do(t, "POST", "/predict", `{"text":"I love this phone"}`, "traceparent", parent, "X-Model-Version", "v1", "X-Request-ID", "req-42")
	if status != 200 {
		t.Fatalf("status %d %s", status, body)
	}
	if tp := h.Get("Traceparent"); !strings.Contains(tp, traceID) {
		t.Errorf("response traceparent %q does not continue trace %s", tp, traceID)
	}
	spans := ts.spans.GetSpans()
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Snapshots() {
		byName[s.Name()] = s
	}
	server, ok := byName["POST /predict"]
	if !ok {
		t.Fatalf("no server span; got %v", names(spans.Snapshots()))
	}
	if server.SpanContext().TraceID().String() != traceID || server.SpanKind() != trace.SpanKindServer || server.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("server span does not continue the caller's trace: %v parent %v", server.SpanContext(), server.Parent())
	}
	wantAttrs := map[string][]string{
		"preprocess":  {"text_length", "model.version"},
		"inference":   {"model.version"},
		"postprocess": {"sentiment", "model.version"},
	}
	for name, keys := range wantAttrs {
		s, ok := byName[name]
		if !ok {
			t.Errorf("no %s span", name)
			continue
		}
		if s.Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("%s is not a child of the server span", name)
		}
		for _, k := range keys {
			if !hasAttr(s.Attributes(), k) {
				t.Errorf("%s span lacks attribute %s (has %v)", name, k, s.Attributes())
			}
		}
	}

	var access map[string]any
	sc := bufio.NewScanner(strings.NewReader(ts.logs.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if line["msg"] == "request" && line["path"] == "/predict" {
			access = line
		}
	}
	if access == nil {
		t.Fatalf("no access log line in:\n%s", ts.logs.String())
	}
	if access["trace_id"] != traceID || access["span_id"] != server.SpanContext().SpanID().String() || access["request_id"] != "req-42" {
		t.Errorf("access log %v does not carry the span's trace/span id and the request id", access)
	}
	for _, k := range []string{"time", "level", "msg", "method", "path", "status", "duration_ms", "model_version"} {
		if _, ok := access[k]; !ok {
			t.Errorf("access log lacks %q: %v", k, access)
		}
	}
	if strings.Contains(ts.logs.String(), "I love this phone") {
		t.Error("request text was logged; it must not be by default")
	}
}

// TestDefaultSamplingRatio: with no parent, about 10% of traces are kept.
func TestDefaultSamplingRatio(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	const n = 3000
	for range n {
		ts.do(t, "GET", "/health", "")
	}
	kept := 0
	for _, s := range ts.spans.GetSpans().Snapshots() {
		if s.SpanKind() == trace.SpanKindServer {
			kept++
		}
	}
	// Binomial sd at p=0.1, n=3000 is 16.4; allow ~4 sd.
	if kept < 235 || kept > 365 {
		t.Errorf("kept %d of %d traces, want about 300", kept, n)
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func hasAttr(attrs []attribute.KeyValue, key string) bool {
	for _, a := range attrs {
		if string(a.Key) == key {
			return true
		}
	}
	return false
}
