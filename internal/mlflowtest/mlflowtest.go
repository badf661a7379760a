// Package mlflowtest starts a real MLflow tracking server and model registry
// for tests: the pinned MLflow in the virtualenv that $MLFLOW_VENV names
// (hack/venv.sh mlflow; hack/test.sh exports it), run by hack/mlflow.sh, the
// same script `make mlflow` runs, on a free loopback port with its SQLite
// store, artifacts and webhook key in a temporary directory.
//
// The server runs in a process group of its own. MLflow 3 starts more than
// one process (the CLI, uvicorn, and with the job runner on, huey consumers),
// so Stop and Kill signal the whole group and return only when no process of
// it is left. A server can be stopped or killed mid-test and restarted on the
// same port and data, as a crash-recovery test needs. Its output goes to a
// log file whose tail the test prints when it fails.
package mlflowtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// VenvEnv names the environment variable holding the MLflow virtualenv.
const VenvEnv = "MLFLOW_VENV"

// Option changes how Start runs the server.
type Option func(*config)

type config struct {
	jobRunner    bool
	startTimeout time.Duration
	stopGrace    time.Duration
}

// WithJobRunner turns MLflow's job runner on: it runs GenAI evaluation jobs
// in huey consumers, eight more processes (the runner and seven consumers).
// The model lifecycle does not use it, so it is off by default, as in `make
// mlflow`.
func WithJobRunner() Option { return func(c *config) { c.jobRunner = true } }

// WithStartTimeout bounds the wait for /health (default 3 minutes: the
// server was up in 10 s on a quiet 2-core machine, and in 20 to 46 s while
// other builds shared the cores).
func WithStartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// WithStopGrace is how long Stop waits after SIGTERM before it sends SIGKILL
// to whatever is left of the group (default 20 s).
func WithStopGrace(d time.Duration) Option { return func(c *config) { c.stopGrace = d } }

// Server is one MLflow server. Its fields stay the same across restarts.
type Server struct {
	URL     string // http://127.0.0.1:PORT, the tracking URI
	Port    int
	DataDir string // mlflow.db, artifacts/, webhook-secret.key
	LogPath string // the server's stdout and stderr, every start appended

	// StartedIn is how long the last start took until /health answered;
	// StoppedIn how long the last Stop or Kill took until the group was gone.
	StartedIn, StoppedIn time.Duration

	t      testing.TB
	cfg    config
	venv   string
	script string
	starts int
	proc   *process // nil while stopped
	// scratch are directories MLflow makes outside DataDir and never removes
	// (the job runner's huey store in /dev/shm); removed after each stop.
	scratch []string
}

// process is one run of hack/mlflow.sh, which execs mlflow server: the leader
// of a new process group whose id is its pid.
type process struct {
	cmd    *exec.Cmd
	pgid   int
	exited chan struct{} // closed once cmd.Wait has returned
	err    error         // cmd.Wait's result, readable after exited is closed
}

// Venv returns $MLFLOW_VENV. With it unset the test fails, saying how to make
// it, unless it runs with -short: then it is skipped, since a real MLflow
// server takes seconds to start.
func Venv(t testing.TB) string {
	t.Helper()
	v, err := venvFrom(os.Getenv)
	if err != nil {
		if testing.Short() {
			t.Skipf("-short: skipping a test that needs a real MLflow server (%v)", err)
		}
		t.Fatal(err)
	}
	return v
}

func venvFrom(getenv func(string) string) (string, error) {
	v := getenv(VenvEnv)
	if v == "" {
		return "", fmt.Errorf("%s is not set: run `make test`, or export %s=\"$(hack/venv.sh mlflow)\" (creates the pinned MLflow virtualenv on first use, 1.5 to 3 min, then reuses it)", VenvEnv, VenvEnv)
	}
	if _, err := os.Stat(filepath.Join(v, "bin", "mlflow")); err != nil {
		return "", fmt.Errorf("%s=%s has no bin/mlflow (%v): recreate it with hack/venv.sh mlflow", VenvEnv, v, err)
	}
	return v, nil
}

// Python returns the virtualenv's python, which has MLflow's Python client.
func Python(t testing.TB) string {
	t.Helper()
	return filepath.Join(Venv(t), "bin", "python")
}

// Start runs a server on a free loopback port with fresh data and waits until
// /health answers. The test's cleanup stops it; if the test failed, the
// cleanup prints the tail of its log first.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config{startTimeout: 3 * time.Minute, stopGrace: 20 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	venv := Venv(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		DataDir: t.TempDir(),
		LogPath: filepath.Join(t.TempDir(), "mlflow.log"),
		t:       t,
		cfg:     cfg,
		venv:    venv,
		script:  filepath.Join(root, "hack", "mlflow.sh"),
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mlflowtest: the MLflow server's log (%s) ends:\n%s", s.LogPath, s.LogTail(100))
		}
		s.Stop()
	})
	// The free port is found by binding and closing it, so another process
	// may take it before MLflow binds: then try another.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.Port = port
		s.URL = "http://127.0.0.1:" + strconv.Itoa(port)
		err = s.start()
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("mlflowtest: %v (the cleanup prints the log's tail)", err)
		}
	}
}

// Restart starts the server again, after Stop or Kill, on the same port and
// data directory.
func (s *Server) Restart() {
	s.t.Helper()
	if s.proc != nil {
		s.t.Fatal("mlflowtest: Restart: the server is running; Stop or Kill it first")
	}
	if err := s.start(); err != nil {
		s.t.Fatalf("mlflowtest: restart on port %d: %v (the cleanup prints the log's tail)", s.Port, err)
	}
}

// Stop sends SIGTERM to the server's process group, then SIGKILL to what is
// left of it after the grace period, and returns once the group is gone. It
// does nothing if the server is not running.
func (s *Server) Stop() {
	s.t.Helper()
	s.end(syscall.SIGTERM, s.cfg.stopGrace)
}

// Kill sends SIGKILL to the server's process group at once, like a crash or
// an OOM kill, and returns once the group is gone.
func (s *Server) Kill() {
	s.t.Helper()
	s.end(syscall.SIGKILL, 0)
}

// PGID is the id of the running server's process group (0 when stopped).
func (s *Server) PGID() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.pgid
}

// Processes lists the pids of the running server's process group.
func (s *Server) Processes() []int {
	s.t.Helper()
	if s.proc == nil {
		return nil
	}
	pids, err := groupMembers(s.proc.pgid)
	if err != nil {
		s.t.Fatalf("mlflowtest: %v", err)
	}
	return pids
}

// StoredPath is where the server keeps the artifact at an mlflow-artifacts
// URI (hack/mlflow.sh serves DataDir/artifacts), so a test can damage what
// the registry holds.
func (s *Server) StoredPath(artifactURI string) string {
	rel := strings.TrimPrefix(artifactURI, "mlflow-artifacts:")
	return filepath.Join(s.DataDir, "artifacts", filepath.FromSlash(strings.TrimLeft(rel, "/")))
}

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	data, err := os.ReadFile(s.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

var errPortTaken = errors.New("port taken")

func (s *Server) start() error {
	s.starts++
	logFile, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open the server log: %w", err)
	}
	// The child has its own descriptor; ours is not needed past Start.
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== mlflowtest: start %d, port %d, data %s, at %s\n", s.starts, s.Port, s.DataDir, time.Now().Format(time.RFC3339Nano))

	cmd := exec.Command("bash", s.script, "--port", strconv.Itoa(s.Port), "--data", s.DataDir)
	cmd.Env = append(os.Environ(),
		VenvEnv+"="+s.venv,
		"MLFLOW_SERVER_ENABLE_JOB_EXECUTION="+strconv.FormatBool(s.cfg.jobRunner),
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// If the test binary dies without its cleanups (a SIGKILL, a timeout's
	// panic), the server gets SIGTERM: MLflow's CLI then stops uvicorn at
	// once, and the job runner, if on, ends itself within seconds when it
	// sees the server gone (measured with a SIGKILLed test binary; only the
	// job runner's /dev/shm store stayed behind).
	setParentDeathSignal(cmd.SysProcAttr)
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.script, err)
	}
	p := &process{cmd: cmd, pgid: cmd.Process.Pid, exited: make(chan struct{})}
	// Owned by the Server: end waits for it (through exited) before it
	// reports the group gone.
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.proc = p

	if err := s.waitHealthy(p, began); err != nil {
		s.end(syscall.SIGKILL, 0)
		return err
	}
	s.StartedIn = time.Since(began)
	s.t.Logf("mlflowtest: MLflow on %s up in %s (start %d, pgid %d)", s.URL, s.StartedIn.Round(time.Millisecond), s.starts, p.pgid)
	if s.cfg.jobRunner {
		s.noteScratch(p.pgid)
	}
	return nil
}

func (s *Server) waitHealthy(p *process, began time.Time) error {
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	deadline := began.Add(s.cfg.startTimeout)
	for {
		select {
		case <-p.exited:
			if strings.Contains(s.LogTail(40), "address already in use") {
				return fmt.Errorf("%w: port %d: %v", errPortTaken, s.Port, p.err)
			}
			return fmt.Errorf("mlflow server exited before /health answered: %v", p.err)
		default:
		}
		resp, err := client.Get(s.URL + "/health")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Equal(bytes.TrimSpace(body), []byte("OK")) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer from %s/health within %s (last: %v)", s.URL, s.cfg.startTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// end signals the group, escalates to SIGKILL after grace, and waits until
// the leader is reaped and no process of the group is left.
func (s *Server) end(sig syscall.Signal, grace time.Duration) {
	s.t.Helper()
	p := s.proc
	if p == nil {
		return
	}
	began := time.Now()
	signalGroup(p.pgid, sig)
	if sig != syscall.SIGKILL && !waitGroupGone(p, grace) {
		s.t.Logf("mlflowtest: processes %v still running %s after %s; sending SIGKILL", members(p.pgid), grace, sig)
		signalGroup(p.pgid, syscall.SIGKILL)
	}
	if !waitGroupGone(p, 15*time.Second) {
		s.t.Errorf("mlflowtest: processes %v of the MLflow server's group %d survive SIGKILL", members(p.pgid), p.pgid)
	}
	s.StoppedIn = time.Since(began)
	s.proc = nil
	for _, dir := range s.scratch {
		if err := os.RemoveAll(dir); err != nil {
			s.t.Errorf("mlflowtest: remove MLflow's scratch directory: %v", err)
		}
	}
	s.scratch = nil
	s.t.Logf("mlflowtest: MLflow on %s stopped (%s) in %s", s.URL, sig, s.StoppedIn.Round(time.Millisecond))
}

// noteScratch records the job runner's huey store, a directory MLflow makes
// in /dev/shm (or the temp dir) for every start and never removes. Its path is
// in the environment of the server's processes.
func (s *Server) noteScratch(pgid int) {
	const key = "_MLFLOW_HUEY_STORAGE_PATH="
	for _, pid := range members(pgid) {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			dir, ok := strings.CutPrefix(string(kv), key)
			// Only ever a fresh mkdtemp directory; never remove anything else.
			if ok && filepath.Clean(dir) == dir && (strings.HasPrefix(dir, "/dev/shm/tmp") || strings.HasPrefix(dir, filepath.Join(os.TempDir(), "tmp"))) {
				s.scratch = append(s.scratch, dir)
				return
			}
		}
	}
}

func signalGroup(pgid int, sig syscall.Signal) {
	// ESRCH: the group is already gone, which is what we want.
	_ = syscall.Kill(-pgid, sig)
}

// waitGroupGone waits up to d for the leader to be reaped and the group to
// have no process left (a zombie still counts: it is not gone until reaped).
func waitGroupGone(p *process, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		select {
		case <-p.exited:
			if err := syscall.Kill(-p.pgid, 0); errors.Is(err, syscall.ESRCH) {
				return true
			}
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func members(pgid int) []int {
	pids, err := groupMembers(pgid)
	if err != nil {
		return nil
	}
	return pids
}

// groupMembers lists the processes (zombies too) whose process group is
// pgid, from /proc/PID/stat.
func groupMembers(pgid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited since ReadDir
		}
		if g, ok := statPGRP(stat); ok && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// statPGRP reads the process group from /proc/PID/stat: "pid (comm) state
// ppid pgrp ...", where comm may hold spaces and parentheses, so fields are
// counted from the last ')'.
func statPGRP(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 3 {
		return 0, false
	}
	g, err := strconv.Atoi(fields[2])
	return g, err == nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// repoRoot is the nearest directory above the working directory (a test's
// package directory) with the platform's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		mod, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(mod, []byte("module github.com/ml-platform/platform\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("mlflowtest: no go.mod of github.com/ml-platform/platform above %s: hack/mlflow.sh is found from the repository root", dir)
		}
	}
}
