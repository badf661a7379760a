// Package tracing follows one request from a client through the real
// ml-inference binary to a real OpenTelemetry Collector (OTLP receiver, file
// exporter; built from the pinned module tools/otelcol by hack/tools.sh) and
// checks that the trace id is the same everywhere an operator would look: the
// response's traceparent, the access log line and the span the collector
// received. It also measures how long a span takes to reach the collector.
package tracing

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/inferencetest"
	"github.com/ml-platform/platform/internal/testtools"
)

// receiverBudget is the seed's bar: a span is at the receiver within 10 s of
// the request.
const receiverBudget = 10 * time.Second

var (
	repoRoot   = filepath.Join("..", "..")
	repoModels = filepath.Join(repoRoot, "models")
)

func TestMain(m *testing.M) { os.Exit(inferencetest.Main(m)) }

// TestTraceLogCorrelation: for each way ml-inference can export (OTLP over
// HTTP with the shipped batch delay, HTTP and gRPC with a short one), a
// request carrying a sampled traceparent and one carrying none both end up
// with one trace id in the response, the access log and the collector.
func TestTraceLogCorrelation(t *testing.T) {
	col := startCollector(t)
	cases := []struct {
		name, protocol, bspDelay string // bspDelay "" = the SDK default (5000 ms), as shipped
		endpoint                 string
	}{
		{name: "http-protobuf-shipped-delay", protocol: "http/protobuf", endpoint: "http://" + col.httpAddr},
		{name: "http-protobuf-bsp-100ms", protocol: "http/protobuf", bspDelay: "100", endpoint: "http://" + col.httpAddr},
		{name: "grpc-bsp-100ms", protocol: "grpc", bspDelay: "100", endpoint: "http://" + col.grpcAddr},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := []string{
				"OTEL_EXPORTER_OTLP_ENDPOINT=" + c.endpoint,
				"OTEL_EXPORTER_OTLP_PROTOCOL=" + c.protocol,
				"OTEL_TRACES_SAMPLER=always_on",
			}
			delay := "5000 (default)"
			if c.bspDelay != "" {
				env = append(env, "OTEL_BSP_SCHEDULE_DELAY="+c.bspDelay)
				delay = c.bspDelay
			}
			srv := startMLInference(t, env)
			// Both requests go out first, so the shipped 5 s batch delay is
			// waited for once; each is timed from its own send.
			type sentRequest struct {
				parent *traceParent // nil: no incoming traceparent
				at     time.Time
				got    response
			}
			var reqs []sentRequest
			for _, withParent := range []bool{true, false} {
				r := sentRequest{}
				if withParent {
					r.parent = &traceParent{traceID: randomHex(16), spanID: randomHex(8), flags: "01"}
				}
				r.at = time.Now()
				r.got = srv.predict(t, r.parent)
				reqs = append(reqs, r)
			}
			for _, r := range reqs {
				tp := r.got.traceparent
				if r.parent != nil && tp.traceID != r.parent.traceID {
					t.Fatalf("response traceparent %s does not continue the trace sent, %s", tp, r.parent.traceID)
				}
				if tp.flags != "01" {
					t.Errorf("response traceparent %s is not sampled under always_on", tp)
				}
				want := traceWant{traceID: tp.traceID, serverSpanID: tp.spanID, service: "ml-inference"}
				if r.parent != nil {
					want.parentSpanID = r.parent.spanID
				}
				elapsed, err := waitForTrace(col.spansFile, want, r.at, receiverBudget)
				// One parseable line per measurement (docs/performance.md quotes them).
				t.Logf("span_to_receiver protocol=%s bsp_delay_ms=%s incoming_traceparent=%t trace_id=%s seconds=%.3f",
					c.protocol, strings.Fields(delay)[0], r.parent != nil, want.traceID, elapsed.Seconds())
				if err != nil {
					t.Fatalf("after %v: %v\ncollector log:\n%s", elapsed.Round(time.Millisecond), err, col.log.String())
				}
				if err := checkAccessLog([]byte(srv.Logs()), tp, r.got.requestID); err != nil {
					t.Errorf("%v\nml-inference log:\n%s", err, srv.Logs())
				}
			}
		})
	}
}

// TestCheckerCanFail proves the harness can fail: after a real request has
// reached the collector, the checks must reject a trace id nobody sent, a
// wrong service name and a trace id absent from the access log.
func TestCheckerCanFail(t *testing.T) {
	col := startCollector(t)
	srv := startMLInference(t, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + col.httpAddr,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_TRACES_SAMPLER=always_on",
		"OTEL_BSP_SCHEDULE_DELAY=100",
	})
	got := srv.predict(t, nil)
	real := traceWant{traceID: got.traceparent.traceID, serverSpanID: got.traceparent.spanID, service: "ml-inference"}
	// Positive control: the real trace is there, so the file is not empty
	// and the failures below are about the planted ids, not a broken setup.
	if _, err := waitForTrace(col.spansFile, real, time.Now(), receiverBudget); err != nil {
		t.Fatalf("the real trace did not arrive: %v", err)
	}

	planted := real
	planted.traceID = randomHex(16)
	err := checkTrace(col.spansFile, planted)
	if err == nil || !strings.Contains(err.Error(), "not among") {
		t.Errorf("a trace id nobody sent (%s) was not reported missing: %v", planted.traceID, err)
	}
	t.Logf("planted trace id: %v", err)

	wrongService := real
	wrongService.service = "not-ml-inference"
	err = checkTrace(col.spansFile, wrongService)
	if err == nil || !strings.Contains(err.Error(), "service.name") {
		t.Errorf("a wrong service.name was not reported: %v", err)
	}
	t.Logf("planted service.name: %v", err)

	wrongParent := real
	wrongParent.parentSpanID = randomHex(8)
	err = checkTrace(col.spansFile, wrongParent)
	if err == nil || !strings.Contains(err.Error(), "parent") {
		t.Errorf("a wrong parent span id was not reported: %v", err)
	}
	t.Logf("planted parent: %v", err)

	if err := checkAccessLog([]byte(srv.Logs()), got.traceparent, got.requestID); err != nil {
		t.Fatalf("positive control: the real request's access line: %v", err)
	}
	absent := got.traceparent
	absent.traceID = randomHex(16)
	err = checkAccessLog([]byte(srv.Logs()), absent, got.requestID)
	if err == nil || !strings.Contains(err.Error(), "no access line") {
		t.Errorf("a trace id absent from the access log (%s) was not reported: %v", absent.traceID, err)
	}
	t.Logf("planted access log trace id: %v", err)
}

// --- the collector ---------------------------------------------------------

type collector struct {
	grpcAddr, httpAddr string
	spansFile          string
	log                *syncBuffer
}

func collectorBin(t *testing.T) string {
	t.Helper()
	return testtools.Bin(t, "OTELCOL_BIN", "otelcol")
}

const collectorConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
exporters:
  file:
    path: %s
    format: json
    flush_interval: 20ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
`

// startCollector runs the collector on two free loopback ports. Picking a
// port and binding it later can race with other processes, so a start that
// fails is retried on new ports.
func startCollector(t *testing.T) *collector {
	t.Helper()
	bin := collectorBin(t)
	var lastErr error
	for range 3 {
		c, err := tryCollector(t, bin)
		if err == nil {
			return c
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func tryCollector(t *testing.T, bin string) (*collector, error) {
	dir := t.TempDir()
	c := &collector{grpcAddr: freeAddr(t), httpAddr: freeAddr(t), spansFile: filepath.Join(dir, "spans.json"), log: &syncBuffer{}}
	config := filepath.Join(dir, "collector.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, collectorConfig, c.grpcAddr, c.httpAddr, c.spansFile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", config)
	cmd.Stdout, cmd.Stderr = c.log, c.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(c.log.String(), "Everything is ready") {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("collector exited before it was ready (%v):\n%s", err, c.log.String())
		case <-deadline:
			cmd.Process.Kill()
			<-exited
			return nil, fmt.Errorf("collector not ready after 30 s:\n%s", c.log.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	return c, nil
}

// --- ml-inference ----------------------------------------------------------

type mlServer struct{ *inferencetest.Process }

// startMLInference runs the binary with the given OTEL_* variables (and no
// others from the environment), logs unbuffered, and waits for its
// "listening" line. At cleanup it sends SIGTERM: ml-inference flushes its
// spans on the way out.
func startMLInference(t *testing.T, otelEnv []string) *mlServer {
	t.Helper()
	return &mlServer{inferencetest.Run(t, inferencetest.Options{
		Args: []string{"--models-dir", repoModels}, Env: otelEnv, CleanEnv: true,
	})}
}

type response struct {
	traceparent traceParent
	requestID   string
}

// predict sends POST /predict, with the given traceparent or none.
func (s *mlServer) predict(t *testing.T, parent *traceParent) response {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL("/predict"), strings.NewReader(`{"text":"The battery is great but the screen is dim"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if parent != nil {
		req.Header.Set("traceparent", parent.String())
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /predict: %d %s", resp.StatusCode, body)
	}
	tp, err := parseTraceParent(resp.Header.Get("traceparent"))
	if err != nil {
		t.Fatalf("response: %v", err)
	}
	return response{traceparent: tp, requestID: resp.Header.Get("X-Request-ID")}
}

// --- W3C trace context -----------------------------------------------------

type traceParent struct{ traceID, spanID, flags string }

func (p traceParent) String() string { return "00-" + p.traceID + "-" + p.spanID + "-" + p.flags }

func parseTraceParent(s string) (traceParent, error) {
	f := strings.Split(s, "-")
	if len(f) != 4 || f[0] != "00" || len(f[1]) != 32 || len(f[2]) != 16 || len(f[3]) != 2 {
		return traceParent{}, fmt.Errorf("traceparent %q is not W3C version 00", s)
	}
	return traceParent{traceID: f[1], spanID: f[2], flags: f[3]}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// --- the checks ------------------------------------------------------------

// traceWant is what the collector must have received for one request.
type traceWant struct {
	traceID      string
	serverSpanID string // the span id in the response's traceparent
	parentSpanID string // the caller's span id; "" = the server span is a root
	service      string // resource attribute service.name
}

// receivedSpan is one span of the file exporter's OTLP JSON, with the
// service.name of its resource.
type receivedSpan struct {
	service                       string
	traceID, spanID, parentSpanID string
	name                          string
	kind                          int
}

type otlpAttr struct {
	Key   string `json:"key"`
	Value struct {
		StringValue string `json:"stringValue"`
	} `json:"value"`
}

// readSpans parses the file exporter's output: one OTLP JSON object
// (ExportTraceServiceRequest) per line. A last line without its newline is
// still being written and is left for the next read.
func readSpans(path string) ([]receivedSpan, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var out []receivedSpan
	for n, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var batch struct {
			ResourceSpans []struct {
				Resource struct {
					Attributes []otlpAttr `json:"attributes"`
				} `json:"resource"`
				ScopeSpans []struct {
					Spans []struct {
						TraceID      string `json:"traceId"`
						SpanID       string `json:"spanId"`
						ParentSpanID string `json:"parentSpanId"`
						Name         string `json:"name"`
						Kind         int    `json:"kind"`
					} `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		}
		if err := json.Unmarshal(line, &batch); err != nil {
			return nil, fmt.Errorf("%s line %d is not OTLP JSON: %w", path, n+1, err)
		}
		for _, rs := range batch.ResourceSpans {
			service := ""
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" {
					service = a.Value.StringValue
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out = append(out, receivedSpan{service: service, traceID: s.TraceID, spanID: s.SpanID,
						parentSpanID: s.ParentSpanID, name: s.Name, kind: s.Kind})
				}
			}
		}
	}
	return out, nil
}

// errNotReceived: the trace is not (yet) in the collector's output.
var errNotReceived = errors.New("not received")

// checkTrace returns nil when the collector received the request's whole
// trace: a server span "POST /predict" with the response's span id, the
// caller as its parent (or no parent), service.name as wanted, and its
// preprocess, inference and postprocess children.
func checkTrace(path string, want traceWant) error {
	spans, err := readSpans(path)
	if err != nil {
		return err
	}
	var trace []receivedSpan
	for _, s := range spans {
		if s.traceID == want.traceID {
			trace = append(trace, s)
		}
	}
	if len(trace) == 0 {
		return fmt.Errorf("trace %s is not among the %d spans received: %w", want.traceID, len(spans), errNotReceived)
	}
	var server *receivedSpan
	for i, s := range trace {
		if s.spanID == want.serverSpanID {
			server = &trace[i]
		}
	}
	if server == nil {
		return fmt.Errorf("trace %s: no span with the response's span id %s (got %v): %w", want.traceID, want.serverSpanID, trace, errNotReceived)
	}
	const spanKindServer = 2 // OTLP SPAN_KIND_SERVER
	var problems []string
	if server.name != "POST /predict" || server.kind != spanKindServer {
		problems = append(problems, fmt.Sprintf("server span is %q kind %d, want \"POST /predict\" kind %d", server.name, server.kind, spanKindServer))
	}
	if server.service != want.service {
		problems = append(problems, fmt.Sprintf("resource service.name is %q, want %q", server.service, want.service))
	}
	if server.parentSpanID != want.parentSpanID {
		problems = append(problems, fmt.Sprintf("server span's parent is %q, want %q", server.parentSpanID, want.parentSpanID))
	}
	for _, child := range []string{"preprocess", "inference", "postprocess"} {
		found := false
		for _, s := range trace {
			found = found || (s.name == child && s.parentSpanID == server.spanID)
		}
		if !found {
			problems = append(problems, fmt.Sprintf("no %s child of the server span", child))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("trace %s: %s", want.traceID, strings.Join(problems, "; "))
	}
	return nil
}

// waitForTrace polls the collector's output until checkTrace passes, and
// returns the time from sent (when the request was sent) until then. It
// stops early on any error other than "not received yet", and gives up at
// sent+limit.
func waitForTrace(path string, want traceWant, sent time.Time, limit time.Duration) (time.Duration, error) {
	start := sent
	ctx, cancel := context.WithDeadline(context.Background(), sent.Add(limit))
	defer cancel()
	for {
		err := checkTrace(path, want)
		if err == nil || !errors.Is(err, errNotReceived) {
			return time.Since(start), err
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("no span within %v: %w", limit, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// checkAccessLog returns nil when ml-inference's log has the access line of
// the request: msg "request", path /predict, the trace and span id of the
// response's traceparent and its request id.
func checkAccessLog(logs []byte, tp traceParent, requestID string) error {
	sc := bufio.NewScanner(bytes.NewReader(logs))
	var seen []string
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("log line is not JSON: %s", sc.Text())
		}
		if line["msg"] != "request" || line["path"] != "/predict" {
			continue
		}
		if line["trace_id"] == tp.traceID {
			if line["span_id"] != tp.spanID || line["request_id"] != requestID || line["status"] != float64(200) {
				return fmt.Errorf("access line for trace %s has span_id %v request_id %v status %v, want %s %s 200: %s",
					tp.traceID, line["span_id"], line["request_id"], line["status"], tp.spanID, requestID, sc.Text())
			}
			return nil
		}
		seen = append(seen, fmt.Sprint(line["trace_id"]))
	}
	return fmt.Errorf("no access line with trace_id %s (access lines have %v)", tp.traceID, seen)
}

// --- helpers ---------------------------------------------------------------

// syncBuffer is an io.Writer for a child's output that tests read while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *syncBuffer) String() string { return string(b.Bytes()) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
