// Package inferencetest runs the real ml-inference binary for tests and
// benchmarks: it builds it once per process (per set of build tags), starts it
// as a child process on loopback, finds its addresses in its JSON log (the
// "listening" and "debug endpoints listening" lines, read as JSON, never by
// attribute order), and stops it.
//
// It is the one way a test starts ml-inference as a process; tests that only
// need the HTTP API use internal/server in-process instead.
package inferencetest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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

// Options say how to start one process.
type Options struct {
	// Binary is the ml-inference to run; "" builds it (Build(Tags...)).
	Binary string
	// Tags are build tags for Build, e.g. "faultinject" for the test-only
	// fault switch.
	Tags []string
	// Args are ml-inference's flags. Unless they set them, --addr is
	// 127.0.0.1:0, --drain-delay 0s and --log-flush-interval 0 (so the
	// "listening" line is written at once). With --addr on port 0 (and with
	// --debug-addr) Start reads the chosen address from the log, which needs
	// --log-level info or debug; an --addr with a fixed port is waited for by
	// connecting to it, at any log level.
	Args []string
	// Env is added to the environment. Unless it sets an OTEL_* variable,
	// OTEL_TRACES_EXPORTER=none is added too (no exporter). With CleanEnv the
	// parent's OTEL_* and ML_INFERENCE_* variables are dropped first.
	Env      []string
	CleanEnv bool
	// LogFile, if set, receives everything the process writes, besides the
	// in-memory copy Logs returns.
	LogFile string
	// StartTimeout bounds the wait for the listening line (default 30 s).
	StartTimeout time.Duration
	// Noise, if set, leaves the log lines containing it out of Tail (e.g.
	// the access log of a load run), so failure output shows the rest.
	Noise string
}

// Process is a running ml-inference.
type Process struct {
	Addr      string // API address, host:port
	DebugAddr string // --debug-addr's address, "" when off

	cmd    *exec.Cmd
	noise  string
	out    *lockedBuffer
	exited chan struct{}
	err    error // set before exited is closed
}

var builds struct {
	sync.Mutex
	dir  string
	bins map[string]string
}

// repoRoot is the module root, found from this file's directory at build
// time of the test binary (tests run in their package's directory).
func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("inferencetest: cannot locate the repository")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "cmd", "ml-inference")); err != nil {
		return "", fmt.Errorf("inferencetest: %s is not the repository root: %w", root, err)
	}
	return root, nil
}

// Build compiles ./cmd/ml-inference with the given build tags, once per
// process and tag set, into a temporary directory that RemoveBuilds deletes.
func Build(tags ...string) (string, error) {
	key := strings.Join(slices.Sorted(slices.Values(tags)), ",")
	builds.Lock()
	defer builds.Unlock()
	if bin, ok := builds.bins[key]; ok {
		return bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	if builds.dir == "" {
		if builds.dir, err = os.MkdirTemp("", "inferencetest-"); err != nil {
			return "", err
		}
		builds.bins = map[string]string{}
	}
	bin := filepath.Join(builds.dir, "ml-inference"+strings.ReplaceAll("-"+key, ",", "-"))
	args := []string{"build", "-o", bin}
	if key != "" {
		args = append(args, "-tags", key)
	}
	cmd := exec.Command("go", append(args, "./cmd/ml-inference")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s ./cmd/ml-inference: %v\n%s", strings.Join(args, " "), err, out)
	}
	builds.bins[key] = bin
	return bin, nil
}

// RemoveBuilds deletes what Build made. Main calls it; a program that calls
// Build itself should defer it.
func RemoveBuilds() {
	builds.Lock()
	defer builds.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
		builds.dir, builds.bins = "", nil
	}
}

// Main runs a package's tests and removes the builds afterwards:
//
//	func TestMain(m *testing.M) { os.Exit(inferencetest.Main(m)) }
func Main(m *testing.M) int {
	defer RemoveBuilds()
	return m.Run()
}

// Start runs ml-inference and waits until it logs that it listens (and, with
// --debug-addr, that its debug endpoints listen). On failure the error
// carries the process's last log lines.
func Start(o Options) (*Process, error) {
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = Build(o.Tags...); err != nil {
			return nil, err
		}
	}
	args := o.Args
	for flag, def := range map[string]string{"--addr": "127.0.0.1:0", "--drain-delay": "0s", "--log-flush-interval": "0"} {
		if !hasFlag(args, flag) {
			args = append([]string{flag, def}, args...)
		}
	}
	wantDebug := hasFlag(args, "--debug-addr")
	fixedAddr := flagValue(args, "--addr")
	if _, port, err := net.SplitHostPort(fixedAddr); err != nil || port == "0" {
		fixedAddr = ""
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if o.CleanEnv && (strings.HasPrefix(kv, "OTEL_") || strings.HasPrefix(kv, "ML_INFERENCE_")) {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	if !slices.ContainsFunc(o.Env, func(kv string) bool { return strings.HasPrefix(kv, "OTEL_") }) {
		cmd.Env = append(cmd.Env, "OTEL_TRACES_EXPORTER=none")
	}
	cmd.Env = append(cmd.Env, o.Env...)
	p := &Process{cmd: cmd, noise: o.Noise, out: &lockedBuffer{}, exited: make(chan struct{})}
	var w io.Writer = p.out
	var logFile *os.File
	if o.LogFile != "" {
		var err error
		if logFile, err = os.Create(o.LogFile); err != nil {
			return nil, err
		}
		w = io.MultiWriter(p.out, logFile)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		// Wait returns once the child has exited and its output has been
		// copied; only then may the log file close.
		p.err = cmd.Wait()
		if logFile != nil {
			logFile.Close()
		}
		close(p.exited)
	}()
	timeout := o.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	deadline := time.After(timeout)
	for {
		if fixedAddr != "" {
			if c, err := net.DialTimeout("tcp", fixedAddr, time.Second); err == nil {
				c.Close()
				p.Addr = fixedAddr
			}
		} else {
			p.Addr = p.logged("listening")
		}
		if wantDebug {
			p.DebugAddr = p.logged("debug endpoints listening")
		}
		if p.Addr != "" && (!wantDebug || p.DebugAddr != "") {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("ml-inference exited before listening (%v):\n%s", p.err, p.Tail(40))
		case <-deadline:
			p.Kill()
			return nil, fmt.Errorf("ml-inference did not log that it listens within %v:\n%s", timeout, p.Tail(40))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Run is Start for tests: it fails the test if the process does not start,
// stops it at cleanup, and prints its last log lines if the test failed.
func Run(t testing.TB, o Options) *Process {
	t.Helper()
	p, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(10 * time.Second); err != nil {
			t.Errorf("ml-inference %s: %v", p.Addr, err)
		}
		if t.Failed() {
			t.Logf("--- last lines of ml-inference %s:\n%s", p.Addr, p.Tail(40))
		}
	})
	return p
}

func hasFlag(args []string, flag string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		a = "--" + strings.TrimLeft(a, "-")
		return a == flag || strings.HasPrefix(a, flag+"=")
	})
}

// flagValue is the value of the last --flag=v or --flag v in args ("" if
// absent).
func flagValue(args []string, flag string) string {
	v := ""
	for i, a := range args {
		a = "--" + strings.TrimLeft(a, "-")
		switch {
		case strings.HasPrefix(a, flag+"="):
			v = strings.TrimPrefix(a, flag+"=")
		case a == flag && i+1 < len(args):
			v = args[i+1]
		}
	}
	return v
}

// logged returns the addr attribute of the first log line whose msg is msg.
func (p *Process) logged(msg string) string {
	sc := bufio.NewScanner(bytes.NewReader(p.out.Bytes()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == msg {
			return line.Addr
		}
	}
	return ""
}

// URL is http://Addr + path.
func (p *Process) URL(path string) string { return "http://" + p.Addr + path }

// DebugURL is http://DebugAddr + path.
func (p *Process) DebugURL(path string) string { return "http://" + p.DebugAddr + path }

// Logs is everything the process wrote so far.
func (p *Process) Logs() string { return p.out.String() }

// Tail is the last n lines the process wrote (leaving out Options.Noise).
func (p *Process) Tail(n int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n") {
		if p.noise == "" || !strings.Contains(l, p.noise) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for a zero exit).
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %v", timeout)
	}
}

// Stop sends SIGTERM and waits up to timeout for a clean exit, then kills
// the process. It reports a process that had to be killed or exited with an
// error; stopping a process that already exited returns its exit error.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("did not exit within %v of SIGTERM; killed", timeout)
	}
}

// Kill kills the process and waits for it.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// lockedBuffer keeps what the child writes, safe for its writes and our
// reads: the first 64 KiB (the start-up lines Start looks for) and the last
// 1 MiB, so a long load run's access log cannot exhaust memory. LogFile
// keeps everything.
type lockedBuffer struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte
	dropped int64
}

const (
	headBytes = 64 << 10
	tailBytes = 1 << 20
)

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rest := p
	if n := min(headBytes-len(b.head), len(rest)); n > 0 {
		b.head = append(b.head, rest[:n]...)
		rest = rest[n:]
	}
	b.tail = append(b.tail, rest...)
	if len(b.tail) > 2*tailBytes {
		cut := len(b.tail) - tailBytes
		b.dropped += int64(cut)
		b.tail = append(b.tail[:0:0], b.tail[cut:]...)
	}
	return len(p), nil
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := bytes.Clone(b.head)
	if b.dropped > 0 {
		out = fmt.Appendf(out, "\n[... %d bytes not kept ...]\n", b.dropped)
	}
	return append(out, b.tail...)
}

func (b *lockedBuffer) String() string { return string(b.Bytes()) }
