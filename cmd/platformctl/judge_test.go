package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/vmtest"
)

// syncBuffer is a bytes.Buffer that run's logger and the test may use at once.
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

// servingJudge is `platformctl judge serve` running through run().
type servingJudge struct {
	base   string
	logs   *syncBuffer
	stop   context.CancelFunc
	result chan error
}

var listeningLine = regexp.MustCompile(`"msg":"listening","addr":"([0-9.:]+)"`)

// serveJudge starts run(judge serve ...) on a loopback port and waits
// until it logs where it listens.
func serveJudge(t *testing.T, env map[string]string, args ...string) *servingJudge {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	j := &servingJudge{logs: &syncBuffer{}, stop: cancel, result: make(chan error, 1)}
	var stderr syncBuffer
	argv := append([]string{"judge", "serve", "--addr", "127.0.0.1:0", "--drain-delay", "0s"}, args...)
	go func() { j.result <- run(ctx, argv, func(k string) string { return env[k] }, j.logs, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-j.result:
		case <-time.After(20 * time.Second):
			t.Error("judge serve did not stop within 20 s of its context")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listeningLine.FindStringSubmatch(j.logs.String()); m != nil {
			j.base = "http://" + m[1]
			return j
		}
		select {
		case err := <-j.result:
			t.Fatalf("judge serve exited: %v\nstdout:\n%s\nstderr:\n%s", err, j.logs, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("judge serve did not log where it listens:\n%s", j.logs)
		}
	}
}

func (j *servingJudge) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(j.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// shutdown cancels run's context (what SIGTERM does in main) and expects it
// to return nil and stop listening.
func (j *servingJudge) shutdown(t *testing.T) {
	t.Helper()
	j.stop()
	select {
	case err := <-j.result:
		if err != nil {
			t.Errorf("judge serve returned %v on shutdown, want nil", err)
		}
		j.result <- err // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("judge serve did not return within 20 s of its context's end")
	}
	if _, err := http.Get(j.base + "/healthz"); err == nil {
		t.Error("judge serve still answers after returning")
	}
}

func TestJudgeServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts VictoriaMetrics")
	}
	vm := vmtest.Start(t)
	now := time.Now().Truncate(15 * time.Second)
	var text strings.Builder
	for _, arm := range []struct {
		hash string
		n    int
	}{{"c0ffee123", 30}, {"5ab1e4567", 270}} {
		for k := range 12 {
			at := now.Add(-time.Duration(11-k) * 15 * time.Second).UnixMilli()
			fmt.Fprintf(&text, "inference_requests_total{namespace=\"judge-cmd\",pod=\"p-%s\",rollouts_pod_template_hash=%q,endpoint=\"/predict\",status=\"200\"} %d %d\n", arm.hash, arm.hash, arm.n*(k+1), at)
		}
	}
	vm.Import(t, text.String())

	// The URL from the environment, as the Deployment may give it.
	j := serveJudge(t, map[string]string{"PLATFORMCTL_PROMETHEUS_URL": vm.URL}, "--namespaces", "judge-cmd")
	for _, c := range []struct {
		path   string
		status int
		has    string
	}{
		{"/healthz", 200, `"status":"ok"`},
		{"/readyz", 200, `"status":"ready"`},
		{"/v1/judge?namespace=judge-cmd&canary=c0ffee123&stable=5ab1e4567&window=5m", 200, `"verdict":"`},
		{"/v1/judge?namespace=judge-cmd&canary=c0ffee123", 400, `"parameter":"stable"`},
		{"/metrics", 200, `judge_verdicts_total{namespace="judge-cmd",verdict="pass"}`},
		{"/metrics", 200, `judge_http_responses_total{code="400"} 1`},
		{"/metrics", 200, "go_goroutines"},
	} {
		status, body := j.get(t, c.path)
		if status != c.status || !strings.Contains(body, c.has) {
			t.Errorf("GET %s: %d, want %d with %s; body:\n%.600s", c.path, status, c.status, c.has, body)
		}
	}
	// Every log line is one JSON object with time, level and msg.
	for line := range strings.SplitSeq(strings.TrimSpace(j.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["time"] == nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("log line is not a JSON record with time, level and msg: %s", line)
		}
	}
	if !strings.Contains(j.logs.String(), `"msg":"judged"`) {
		t.Errorf("no judgement logged:\n%s", j.logs)
	}
	j.shutdown(t)
	if !strings.Contains(j.logs.String(), `"msg":"stopped"`) {
		t.Errorf("no stop logged:\n%s", j.logs)
	}
}

// TestJudgeServeDeadBackend: pointed at an address where nothing listens,
// the judge is live, not ready (503), and answers a judgement with a 502.
func TestJudgeServeDeadBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	j := serveJudge(t, nil, "--prometheus-url", dead, "--backend-timeout", "2s")
	for _, c := range []struct {
		path   string
		status int
		has    string
	}{
		{"/healthz", 200, `"status":"ok"`},
		{"/readyz", 503, `"code":"backend_unavailable"`},
		{"/v1/judge?namespace=ml-inference-prod&canary=c0ffee123&stable=5ab1e4567", 502, `"code":"backend_unavailable"`},
		{"/metrics", 200, `judge_http_responses_total{code="502"} 1`},
	} {
		status, body := j.get(t, c.path)
		if status != c.status || !strings.Contains(body, c.has) {
			t.Errorf("GET %s: %d, want %d with %s; body:\n%.600s", c.path, status, c.status, c.has, body)
		}
	}
	j.shutdown(t)
}

func TestJudgeServeFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		says string
	}{
		{nil, nil, "-prometheus-url is required"},
		{[]string{"--prometheus-url", "victoria-metrics:8428"}, nil, "absolute http(s) URL"},
		{[]string{"--prometheus-url", "http://vm:8428", "--alpha", "0"}, nil, "alpha 0 must be in (0, 1)"},
		{[]string{"--prometheus-url", "http://vm:8428"}, map[string]string{"PLATFORMCTL_LATENCY_TOLERANCE": "0.3"}, "latency tolerance 0.3"},
		{[]string{"--prometheus-url", "http://vm:8428"}, map[string]string{"PLATFORMCTL_MIN_REQUESTS": "many"}, "PLATFORMCTL_MIN_REQUESTS"},
		{[]string{"--prometheus-url", "http://vm:8428", "--namespaces", "Prod"}, nil, `namespace "Prod"`},
		{[]string{"--prometheus-url", "http://vm:8428", "--namespaces", " , "}, nil, "no namespace"},
		{[]string{"--prometheus-url", "http://vm:8428", "--log-level", "loud"}, nil, "-log-level"},
		{[]string{"--prometheus-url", "http://vm:8428", "--addr", "127.0.0.1:-1"}, nil, "listen on -addr"},
	} {
		err := run(context.Background(), append([]string{"judge", "serve"}, c.args...), func(k string) string { return c.env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("judge serve %v (env %v): %v, want an error saying %q", c.args, c.env, err, c.says)
		}
	}
}

// TestJudgeDefaultNamespacesAreTheEnvironments: the namespaces served by
// default are ml-inference-<name> for every environment the repository
// declares (infrastructure/platform.yaml).
func TestJudgeDefaultNamespacesAreTheEnvironments(t *testing.T) {
	repo, err := gitops.Load(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, name := range repo.EnvironmentNames() {
		want = append(want, "ml-inference-"+name)
	}
	if got := strings.Join(want, ","); got != defaultJudgeNamespaces {
		t.Errorf("judge serve's default namespaces are %s; the environments' are %s", defaultJudgeNamespaces, got)
	}
}
