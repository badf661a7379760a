package mlflowtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestVenvFromEnv(t *testing.T) {
	_, err := venvFrom(func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), `MLFLOW_VENV="$(hack/venv.sh mlflow)"`) {
		t.Errorf("unset MLFLOW_VENV: got %v, want the command that makes it", err)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	_, err = venvFrom(func(string) string { return missing })
	if err == nil || !strings.Contains(err.Error(), "has no bin/mlflow") {
		t.Errorf("MLFLOW_VENV without mlflow: got %v", err)
	}
}

func TestStatPGRP(t *testing.T) {
	for stat, want := range map[string]int{
		"4242 (python3) S 1 4240 4240 0 -1":          4240,
		"4242 (a) b (c)) R 7 99 99 0 -1 4194560 123": 99, // comm with spaces and parentheses
	} {
		if got, ok := statPGRP([]byte(stat)); !ok || got != want {
			t.Errorf("statPGRP(%q) = %d, %v; want %d", stat, got, ok, want)
		}
	}
	if _, ok := statPGRP([]byte("garbage")); ok {
		t.Error("statPGRP accepted a line without a comm")
	}
}

// The check that no process of a server's group survives must see one that
// does: a planted process in a group of its own.
func TestGroupMembersSeesAPlantedProcess(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, pgid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	if got := members(p.pgid); !slices.Equal(got, []int{p.pgid}) {
		t.Fatalf("members of the planted group %d = %v, want the sleep", p.pgid, got)
	}
	if waitGroupGone(p, 200*time.Millisecond) {
		t.Fatal("waitGroupGone reported a running process gone")
	}
	signalGroup(p.pgid, syscall.SIGKILL)
	if !waitGroupGone(p, 5*time.Second) {
		t.Fatalf("the planted group is still there after SIGKILL: %v", members(p.pgid))
	}
}

func TestScriptRejectsBadArguments(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--port", "http"}, {"--port", "70000"}, {"--bogus"}, {"--data"}} {
		out, err := exec.Command("bash", append([]string{filepath.Join(root, "hack", "mlflow.sh")}, args...)...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !bytes.HasPrefix(out, []byte("hack/mlflow.sh: ")) {
			t.Errorf("hack/mlflow.sh %v: exit %v, output %q; want exit 2 and a message", args, err, out)
		}
	}
}

// TestServerLifecycle starts MLflow with its job runner (the most processes
// MLflow makes), kills it like a crash, restarts it on the same port and data,
// then stops it with a planted process in its group that ignores SIGTERM:
// after each end, no process of the group may be left.
func TestServerLifecycle(t *testing.T) {
	s := Start(t, WithJobRunner(), WithStopGrace(3*time.Second))
	first := s.Processes()
	// The CLI, uvicorn, the job runner and its huey consumers.
	if len(first) < 3 {
		t.Errorf("MLflow with the job runner runs %d processes (%v), want 3 or more", len(first), first)
	}
	if len(s.scratch) != 1 {
		t.Errorf("the job runner's huey store was not found: %v", s.scratch)
	}
	scratch := slices.Clone(s.scratch)
	for _, dir := range scratch {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("huey store: %v", err)
		}
	}
	id := createExperiment(t, s.URL, "survives-a-crash")

	pgid := s.PGID()
	s.Kill()
	assertGone(t, pgid, first)
	for _, dir := range scratch {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("huey store %s left behind after the server ended: %v", dir, err)
		}
	}
	if _, err := http.Get(s.URL + "/health"); err == nil {
		t.Fatal("/health still answers after Kill")
	}
	t.Logf("figures: start %s, kill %s", s.StartedIn.Round(time.Millisecond), s.StoppedIn.Round(time.Millisecond))

	url := s.URL
	s.Restart()
	if s.URL != url {
		t.Fatalf("restart moved the server from %s to %s", url, s.URL)
	}
	if got := experimentID(t, s.URL, "survives-a-crash"); got != id {
		t.Errorf("after a SIGKILL and restart, experiment id %q, want %q", got, id)
	}

	// A process of the group that ignores SIGTERM: Stop must escalate.
	stubborn := exec.Command("bash", "-c", "trap '' TERM; while :; do sleep 0.2; done")
	stubborn.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: s.PGID()}
	if err := stubborn.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = stubborn.Wait(); close(reaped) }() // reaps it: a zombie would stay in the group
	second := s.Processes()
	if !slices.Contains(second, stubborn.Process.Pid) {
		t.Fatalf("the planted process %d is not in the server's group %v", stubborn.Process.Pid, second)
	}
	pgid = s.PGID()
	s.Stop()
	<-reaped
	assertGone(t, pgid, second)
	if s.StoppedIn < 3*time.Second {
		t.Errorf("Stop took %s with a process ignoring SIGTERM: it cannot have waited the grace period and sent SIGKILL", s.StoppedIn)
	}
	t.Logf("figures: restart %s, stop with SIGKILL escalation %s", s.StartedIn.Round(time.Millisecond), s.StoppedIn.Round(time.Millisecond))
	s.Stop() // a second Stop does nothing
}

// assertGone checks that no process is in group pgid and that none of pids
// is still running in it.
func assertGone(t *testing.T, pgid int, pids []int) {
	t.Helper()
	if left := members(pgid); len(left) > 0 {
		t.Errorf("processes %v of group %d survived", left, pgid)
	}
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone
		}
		if g, ok := statPGRP(stat); ok && g == pgid {
			t.Errorf("process %d of group %d survived", pid, pgid)
		}
	}
}

func createExperiment(t *testing.T, base, name string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name})
	resp, err := http.Post(base+"/api/2.0/mlflow/experiments/create", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID string `json:"experiment_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.ID == "" {
		t.Fatalf("create experiment: %s, %v, %+v", resp.Status, err, out)
	}
	return out.ID
}

func experimentID(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := http.Get(base + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Experiment struct {
			ID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("get experiment %s: %s, %v", name, resp.Status, err)
	}
	return out.Experiment.ID
}

// A server that cannot start fails the test with the reason, and the log's
// tail is printed: planted with a fake virtualenv whose mlflow exits.
func TestStartFailureShowsTheLog(t *testing.T) {
	venv := t.TempDir()
	if err := os.Mkdir(filepath.Join(venv, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, script := range map[string]string{
		"mlflow": "#!/bin/sh\necho 'planted: mlflow cannot start' >&2\nexit 3\n",
		"python": "#!/bin/sh\necho 0.0\n",
	} {
		if err := os.WriteFile(filepath.Join(venv, "bin", name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(VenvEnv, venv)
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); Start(r) }() // ends in r.Fatalf's Goexit
	<-done
	r.runCleanups()
	out := strings.Join(r.logs, "\n")
	if !r.failed || !strings.Contains(out, "mlflow server exited before /health answered: exit status 3") ||
		!strings.Contains(out, "planted: mlflow cannot start") {
		t.Errorf("a server that exits at once: failed=%v, output:\n%s\nwant the reason and the log's tail", r.failed, out)
	}
}

// recorder stands in for the test given to Start, recording what it
// reports; Fatal ends the calling goroutine, as testing.T's does.
type recorder struct {
	testing.TB // TempDir, Helper, Name, Setenv: the real test's
	mu         sync.Mutex
	logs       []string
	failed     bool
	cleanups   []func()
}

func (r *recorder) record(fail bool, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
	r.failed = r.failed || fail
}

func (r *recorder) Logf(format string, args ...any)   { r.record(false, format, args...) }
func (r *recorder) Errorf(format string, args ...any) { r.record(true, format, args...) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.record(true, format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }
func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *recorder) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}
