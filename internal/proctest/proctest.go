// Package proctest runs a program for the length of a test: its output goes
// to a log file, it is stopped at cleanup (SIGTERM, then SIGKILL after 5 s),
// and if the test failed the log's last lines are printed. Waits for the
// program to answer or to log a line fail the test with those lines when the
// program exits or takes too long. (ml-inference itself has
// internal/inferencetest, which builds it and knows its log.)
package proctest

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is a running program.
type Proc struct {
	Name string
	Log  string // its stdout and stderr
	cmd  *exec.Cmd

	exited chan struct{}
}

// Start starts bin with args and the environment plus env, logging to
// dir/<name>.log.
func Start(t testing.TB, dir, name string, env []string, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	out, err := os.Create(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("--- last lines of %s (%s):\n%s", name, p.Log, p.Tail(40))
		}
	})
	return p
}

// Exited is closed once the program has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Tail is the last n lines of the log.
func (p *Proc) Tail(n int) string {
	data, _ := os.ReadFile(p.Log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitLog waits up to timeout until the program has logged a line matching
// re, and returns re's first submatch.
func (p *Proc) WaitLog(t testing.TB, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		data, _ := os.ReadFile(p.Log)
		if m := re.FindSubmatch(data); m != nil {
			return string(m[1])
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before logging %q:\n%s", p.Name, re, p.Tail(40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %v:\n%s", p.Name, re, timeout, p.Tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitOK polls url up to timeout until it answers 200.
func (p *Proc) WaitOK(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited:\n%s", p.Name, p.Tail(40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer 200 at %s after %v (last: %v):\n%s", p.Name, url, timeout, err, p.Tail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
