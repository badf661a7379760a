package main

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// A wrk report as wrk 4.1 prints it, with failures planted.
const wrkReport = `Running 5s test @ http://127.0.0.1:8000/predict
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    3.01ms  40.12ms   90.00%
    Req/Sec     7.50k     1.10k   10.00k    70.00%
  Latency Distribution
     50%    1.50ms
     75%    2.20ms
     90%  850.00us
     99%    1.20s
  75000 requests in 5.00s, 20.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 17
Requests/sec:  15000.50
Transfer/sec:      4.00MB
`

// TestParseWrk: the harness reads throughput and percentiles in their units
// and does not miss failed requests.
func TestParseWrk(t *testing.T) {
	r, err := parseWrk([]byte(wrkReport))
	if err != nil {
		t.Fatal(err)
	}
	if r.rps != 15000.5 || r.p50 != 1.5 || r.p90 != 0.85 || r.p99 != 1200 {
		t.Errorf("parsed %+v", r)
	}
	if r.requests != 75000 {
		t.Errorf("total requests parsed as %d, want 75000", r.requests)
	}
	if r.non2xx != 17 || r.errors != 3 {
		t.Errorf("failures not caught: non2xx %d errors %d", r.non2xx, r.errors)
	}
	if _, err := parseWrk([]byte("garbage")); err == nil {
		t.Error("unparsable output accepted")
	}
}

// TestFailuresFailTheRun: a run with non-2xx responses is an error, not a
// figure.
func TestFailuresFailTheRun(t *testing.T) {
	if err := checkFailures("x", result{non2xx: 1}); err == nil || !strings.Contains(err.Error(), "non-2xx") {
		t.Errorf("err %v", err)
	}
	if err := checkFailures("x", result{}); err != nil {
		t.Error(err)
	}
}

func TestReadRSS(t *testing.T) {
	if rss := readRSS(os.Getpid()); rss < 1<<20 {
		t.Errorf("RSS of this process read as %d bytes", rss)
	}
}

// TestSinkCountsSpans: the sink counts the spans of what the real OTLP/HTTP
// exporter sends (two scopes, plain and gzip), and refuses a body that is
// not an export request.
func TestSinkCountsSpans(t *testing.T) {
	s, err := startSink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, compression := range []otlptracehttp.Compression{otlptracehttp.NoCompression, otlptracehttp.GzipCompression} {
		before := s.spans.Load()
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL("http://"+s.ln.Addr().String()+"/v1/traces"),
			otlptracehttp.WithCompression(compression))
		if err != nil {
			t.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
		for i := range 7 {
			_, span := tp.Tracer([]string{"a", "b"}[i%2]).Start(context.Background(), "op")
			span.End()
		}
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Fatalf("export (compression %v): %v", compression, err)
		}
		if got := s.spans.Load() - before; got != 7 {
			t.Errorf("compression %v: sink counted %d spans, want 7", compression, got)
		}
	}
	if s.malformed.Load() != 0 {
		t.Errorf("%d real export requests not decoded", s.malformed.Load())
	}
	resp, err := http.Post("http://"+s.ln.Addr().String()+"/v1/traces", "application/x-protobuf", strings.NewReader("\x0a\xff\xff not protobuf"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || s.malformed.Load() != 1 {
		t.Errorf("malformed body: status %d, malformed count %d", resp.StatusCode, s.malformed.Load())
	}
}
