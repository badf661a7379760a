// Package vmtest starts a real VictoriaMetrics (single-node, the binary
// hack/tools.sh builds from the pinned module; VICTORIA_METRICS_BIN) for a
// test, on a loopback port with its own data directory, and writes samples
// into it through its Prometheus text import.
//
//	vm := vmtest.Start(t)
//	vm.Import(t, `inference_requests_total{namespace="ns",status="200"} 42 1700000000000`)
//	// query vm.URL + "/api/v1/query_range?..."
//
// The process is stopped when the test ends (SIGTERM, then SIGKILL after
// 5 s); if the test failed, the tail of its log is printed.
package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/testtools"
)

// Server is one running VictoriaMetrics.
type Server struct {
	URL    string // http://127.0.0.1:PORT
	log    string
	cmd    *exec.Cmd
	exited chan struct{}
}

var client = &http.Client{Timeout: 10 * time.Second}

// listening is the line VictoriaMetrics logs once it serves (lib/httpserver).
var listening = regexp.MustCompile(`started server at (http://[0-9.]+:[0-9]+)/`)

// Start runs VictoriaMetrics with the given extra flags and waits until it
// answers /health. Queries see samples as soon as they are flushed (Import
// flushes), with no latency offset and no result cache, so a test reads
// back what it wrote.
func Start(t testing.TB, flags ...string) *Server {
	t.Helper()
	bin := testtools.Bin(t, "VICTORIA_METRICS_BIN", "victoria-metrics")
	dir := t.TempDir()
	s := &Server{log: filepath.Join(dir, "victoria-metrics.log"), exited: make(chan struct{})}
	out, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{
		"-httpListenAddr=127.0.0.1:0",
		"-storageDataPath=" + filepath.Join(dir, "data"),
		"-retentionPeriod=1y",
		"-search.latencyOffset=0s",
		"-search.disableCache",
	}, flags...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		s.cmd.Wait()
		out.Close()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("--- last lines of VictoriaMetrics' log (%s):\n%s", s.log, s.tail(30))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for s.URL == "" {
		if m := listening.FindSubmatch(s.read()); m != nil {
			s.URL = string(m[1])
			break
		}
		select {
		case <-s.exited:
			t.Fatalf("VictoriaMetrics exited at start:\n%s", s.tail(30))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("VictoriaMetrics did not listen within 60 s:\n%s", s.tail(30))
		}
	}
	for {
		resp, err := client.Get(s.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("VictoriaMetrics at %s is not healthy within 60 s (last error %v):\n%s", s.URL, err, s.tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the process (SIGTERM, then SIGKILL after 5 s) and waits for it.
// It is safe to call more than once; the test's cleanup calls it too.
func (s *Server) Stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *Server) read() []byte {
	data, _ := os.ReadFile(s.log)
	return data
}

func (s *Server) tail(n int) string {
	lines := strings.Split(strings.TrimRight(string(s.read()), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Import writes samples in the Prometheus text format, each line
// `name{labels} value [timestamp in ms]`, through /api/v1/import/prometheus,
// then flushes them so that queries see them at once.
func (s *Server) Import(t testing.TB, text string) {
	t.Helper()
	if err := s.post(t.Context(), "/api/v1/import/prometheus", text); err != nil {
		t.Fatal(err)
	}
	if err := s.post(t.Context(), "/internal/force_flush", ""); err != nil {
		t.Fatal(err)
	}
}

func (s *Server) post(ctx context.Context, path, body string) error {
	method := http.MethodPost
	if body == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}
