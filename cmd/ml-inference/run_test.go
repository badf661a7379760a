package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/inferencetest"
)

func TestMain(m *testing.M) { os.Exit(inferencetest.Main(m)) }

var repoModels = filepath.Join("..", "..", "models")

// start runs the real binary (built once by inferencetest) and waits until it
// listens.
func start(t *testing.T, args ...string) *inferencetest.Process {
	t.Helper()
	return inferencetest.Run(t, inferencetest.Options{Args: args})
}

// TestSIGTERMDrainsWithoutFailures sends load across a SIGTERM. Clients act
// like a load balancer: they stop sending new requests shortly after /ready
// turns 503 (well within the drain delay). Every request sent gets a 200,
// including one that is in flight when the signal arrives.
func TestSIGTERMDrainsWithoutFailures(t *testing.T) {
	p := start(t, "--models-dir", repoModels, "--drain-delay", "700ms")
	client := &http.Client{Timeout: 10 * time.Second}

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				resp, err := client.Post(p.URL("/predict"), "application/json", strings.NewReader(`{"text":"great"}`))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
				}
			}
		})
	}
	// A slow request in flight across the whole drain: its body is still
	// arriving when the server stops accepting new connections.
	pr, pw := io.Pipe()
	slow := make(chan int, 1)
	go func() {
		resp, err := client.Post(p.URL("/predict"), "application/json", pr)
		if err != nil {
			slow <- -1
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	pw.Write([]byte(`{"text":`))

	time.Sleep(300 * time.Millisecond)
	before := sent.Load()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The load balancer's view: /ready turns 503 at once.
	readyAt := time.Now()
	for {
		resp, err := client.Get(p.URL("/ready"))
		if err != nil {
			t.Fatalf("/ready while draining: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == 503 {
			break
		}
		if time.Since(readyAt) > time.Second {
			t.Fatal("/ready did not turn 503 after SIGTERM")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("/ready turned 503 %v after SIGTERM", time.Since(readyAt).Round(time.Millisecond))
	time.Sleep(200 * time.Millisecond) // endpoint removal propagates
	close(stop)
	wg.Wait()
	duringDrain := sent.Load() - before
	pw.Write([]byte(`"finished late"}`))
	pw.Close()
	if status := <-slow; status != 200 {
		t.Errorf("in-flight request across shutdown got %d", status)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Errorf("exit after draining: %v", err)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed (first: %v)", failed.Load(), sent.Load(), firstErr.Load())
	}
	if duringDrain == 0 {
		t.Fatal("no requests were sent after SIGTERM; the test proves nothing")
	}
	t.Logf("%d requests, %d of them after SIGTERM, 0 failed", sent.Load(), duringDrain)
	if !strings.Contains(p.Logs(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in logs:\n%s", p.Logs())
	}
}

// TestSIGHUPReloads: a version added to the models directory is served after
// SIGHUP, without a restart.
func TestSIGHUPReloads(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "v1"), os.DirFS(filepath.Join(repoModels, "v1"))); err != nil {
		t.Fatal(err)
	}
	p := start(t, "--models-dir", dir, "--drain-delay", "0")
	if got := versions(t, p); got != "v1" {
		t.Fatalf("versions %q", got)
	}
	if err := os.CopyFS(filepath.Join(dir, "v2"), os.DirFS(filepath.Join(repoModels, "v2"))); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return versions(t, p) == "v1,v2" }, "v2 served after SIGHUP")
}

// TestWatchReloads: with --watch-interval the directory is polled.
func TestWatchReloads(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "v1"), os.DirFS(filepath.Join(repoModels, "v1"))); err != nil {
		t.Fatal(err)
	}
	p := start(t, "--models-dir", dir, "--drain-delay", "0", "--watch-interval", "50ms")
	if err := os.CopyFS(filepath.Join(dir, "v2"), os.DirFS(filepath.Join(repoModels, "v2"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return versions(t, p) == "v1,v2" }, "v2 served after the watcher saw it")
	metrics := get(t, p.URL("/metrics"))
	if !strings.Contains(metrics, `model_reloads_total{result="success"}`) || !strings.Contains(metrics, "model_versions_loaded 2") {
		t.Errorf("reload not visible in metrics")
	}
}

func versions(t *testing.T, p *inferencetest.Process) string {
	var m struct {
		Models []struct{ Version string } `json:"models"`
	}
	json.Unmarshal([]byte(get(t, p.URL("/models"))), &m)
	var out []string
	for _, v := range m.Models {
		out = append(out, v.Version)
	}
	return strings.Join(out, ",")
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTakenDebugPortFailsStartup: with --debug-addr on a port that is already
// taken, the process must not start serving: it exits at once, non-zero,
// naming the flag. (It used to serve traffic and then ignore SIGTERM, waiting
// forever for a server goroutine that was still serving.)
func TestTakenDebugPortFailsStartup(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	bin, err := inferencetest.Build()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--models-dir", repoModels, "--debug-addr", taken.Addr().String())
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("exit %v, want a non-zero exit code:\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("still running 10 s after start with a taken --debug-addr:\n%s", out.String())
	}
	if want := "listen on -debug-addr " + taken.Addr().String(); !strings.Contains(out.String(), want) {
		t.Errorf("output does not say %q:\n%s", want, out.String())
	}
	if strings.Contains(out.String(), `"msg":"listening"`) {
		t.Errorf("it started serving before failing:\n%s", out.String())
	}
}

// TestConfigErrors: bad configuration fails at start with a message naming
// the flag, variable, file or field.
func TestConfigErrors(t *testing.T) {
	bad := t.TempDir()
	os.MkdirAll(filepath.Join(bad, "v1"), 0o755)
	os.WriteFile(filepath.Join(bad, "v1", "model.json"), []byte("{\n  \"name\": \"x\",\n  \"version\": 3\n}\n"), 0o644)
	shortKey := filepath.Join(bad, "short-key")
	os.WriteFile(shortKey, []byte("short\n"), 0o600)
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--traffic", "v1=abc"}, nil, `weight of "v1"`},
		{[]string{"--traffic", "v1"}, nil, "want version=weight"},
		{nil, map[string]string{"ML_INFERENCE_MAX_BATCH": "lots"}, "ML_INFERENCE_MAX_BATCH"},
		{[]string{"--models-dir", filepath.Join(bad, "missing")}, nil, "read model directory"},
		{[]string{"--models-dir", bad}, nil, `model.json: line 3: field "version"`},
		{[]string{"--log-level", "loud"}, nil, "log level"},
		{[]string{"--addr", "256.0.0.1:1"}, nil, "listen on -addr 256.0.0.1:1"},
		{[]string{"--max-inflight", "0"}, nil, "-max-inflight"},
		{[]string{"--feedback-key-file", filepath.Join(bad, "no-such-key")}, nil, "-feedback-key-file: feedback key file"},
		{[]string{"--feedback-key-file", shortKey}, nil, "must be at least 32"},
		{[]string{"--feedback-token-ttl", "0s"}, nil, "-feedback-token-ttl"},
		{[]string{"--addr", "127.0.0.1:0"}, map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"},
		{[]string{"--addr", "127.0.0.1:0"}, map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
	}
	for _, c := range cases {
		getenv := func(k string) string { return c.env[k] }
		var out strings.Builder
		err := run(context.Background(), append([]string{"--models-dir", repoModels}, c.args...), getenv, &out, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("args %v env %v: err %v, want it to mention %q", c.args, c.env, err, c.want)
		}
	}
}
