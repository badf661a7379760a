package inferencetest

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

var models = filepath.Join("..", "..", "models")

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStartFindsBothAddresses: the API and debug addresses come from the
// JSON log, and the log file holds everything once the process stopped,
// however much it wrote (the copy must never block the child).
func TestStartFindsBothAddresses(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "ml.log")
	p, err := Start(Options{Args: []string{"--models-dir", models, "--debug-addr", "127.0.0.1:0"}, LogFile: logFile})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, p.URL("/ready")); code != 200 {
		t.Errorf("/ready: %d", code)
	}
	if code, _ := get(t, p.DebugURL("/debug/pprof/")); code != 200 {
		t.Errorf("pprof on the debug address: %d", code)
	}
	const n = 3000 // about 1 MB of access log, more than a pipe buffers
	for range n {
		resp, err := http.Post(p.URL("/predict"), "application/json", strings.NewReader(`{"text":"fine"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(data), `"msg":"request"`); got < n {
		t.Errorf("log file holds %d access lines, want at least %d", got, n)
	}
	if !strings.Contains(p.Logs(), `"msg":"stopped"`) {
		t.Errorf("in-memory log lacks the last line: %s", p.Tail(3))
	}
}

// TestFixedAddressAtErrorLevel: with a fixed --addr nothing needs to be
// logged at info.
func TestFixedAddressAtErrorLevel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := Run(t, Options{Args: []string{"--addr", addr, "--models-dir", models, "--log-level", "error"}})
	if p.Addr != addr {
		t.Errorf("Addr %q, want %q", p.Addr, addr)
	}
	if code, _ := get(t, p.URL("/health")); code != 200 {
		t.Errorf("/health: %d", code)
	}
}

// TestStartReportsAFailedStart is the harness's planted failure: a process
// that exits before listening is an error carrying its own words.
func TestStartReportsAFailedStart(t *testing.T) {
	_, err := Start(Options{Args: []string{"--models-dir", filepath.Join(t.TempDir(), "none")}})
	if err == nil || !strings.Contains(err.Error(), "exited before listening") || !strings.Contains(err.Error(), "read model directory") {
		t.Fatalf("err = %v, want an exit before listening with the reason", err)
	}
}

// TestLoadRecordsVersionsAndCountsFailures: a load records who answered,
// and a process that dies under it is counted as failures (the planted
// failure of the harness).
func TestLoadRecordsVersionsAndCountsFailures(t *testing.T) {
	p, err := Start(Options{Args: []string{"--models-dir", models}, Noise: `"msg":"request"`})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	load := StartLoad(p, 2, time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	// The models directory's latest version takes every unpinned request.
	latest := "v3"
	if at, ok := load.FirstServedBy(latest, began); !ok || at.Before(began) {
		t.Errorf("no answer from %s recorded (served: %v)", latest, load.ServedSince(began))
	}
	if _, ok := load.FirstServedBy("v1", began); ok {
		t.Error("an answer from v1, which takes no unpinned traffic")
	}
	if _, ok := load.FirstServedBy("v2", began); ok {
		t.Error("an answer from v2, which takes no unpinned traffic")
	}
	p.Kill()
	time.Sleep(100 * time.Millisecond)
	res := load.Stop()
	if res.Sent == 0 || res.Failed == 0 || res.FirstFailure == "" {
		t.Errorf("a load on a killed process: %+v, want failures", res)
	}
}
