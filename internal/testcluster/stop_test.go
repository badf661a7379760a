package testcluster

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// children lists the pids of this process's child processes, from /proc.
func children(t *testing.T) map[int]string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getpid()
	kids := map[int]string{}
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == me {
			pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
			kids[pid] = s[open+1 : end]
		}
	}
	return kids
}

// alive reports whether a process with this pid exists (a zombie counts:
// nobody reaped it).
func alive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// TestStopLeavesNoProcess starts every component, freezes kwok so that it
// cannot act on SIGTERM (Stop must escalate to SIGKILL), stops the cluster
// and checks by pid that none of the processes it started is left. It runs
// alone (not parallel), so every child of the test binary is this
// cluster's.
func TestStopLeavesNoProcess(t *testing.T) {
	t.Run("the check sees a live process", func(t *testing.T) {
		// The planted failure for the check below: a child that lives.
		cmd := exec.Command("sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		if _, ok := children(t)[pid]; !ok || !alive(pid) {
			t.Errorf("a running sleep (pid %d) is not seen as a live child", pid)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if _, ok := children(t)[pid]; ok || alive(pid) {
			t.Errorf("a killed, reaped sleep (pid %d) is still seen", pid)
		}
	})

	dir := t.TempDir()
	c, err := Start(Options{
		Dir:               dir,
		CRDDirs:           rolloutCRDDirs(t),
		ControllerManager: true,
		Scheduler:         true,
		Nodes:             KindNodes(),
		Rollouts:          true,
		RolloutsNamespace: "delivery",
		StopGrace:         2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("every component up in %v: %v", c.Started, c.Timings)
	kids := children(t)
	t.Logf("children: %v", kids)
	for name, pid := range c.PIDs() {
		if _, ok := kids[pid]; !ok {
			t.Errorf("%s (pid %d) is not a child of the test", name, pid)
		}
	}
	if len(kids) != len(c.PIDs())+2 {
		t.Errorf("%d children, want etcd, kube-apiserver and %d components", len(kids), len(c.PIDs()))
	}
	for _, name := range c.Components() {
		if lines := c.Logs(name, 3); lines == "" || strings.HasPrefix(lines, "(") {
			t.Errorf("Logs(%s, 3) = %q", name, lines)
		}
	}
	if got := c.Logs("kubelet", 3); !strings.Contains(got, `no log for "kubelet"`) {
		t.Errorf("Logs of an unknown component = %q", got)
	}
	if got := c.Logs(Rollouts, 100); !strings.Contains(got, "namespace=delivery") {
		t.Errorf("the Rollouts controller is not confined to namespace delivery:\n%s", got)
	}
	kwok := c.PIDs()[Kwok]
	if err := syscall.Kill(kwok, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("Stop took %v (kwok frozen: %v grace, then SIGKILL)", time.Since(start).Round(time.Millisecond), 2*time.Second)
	for pid, name := range kids {
		if alive(pid) {
			t.Errorf("%s (pid %d) survived Stop", name, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if left := children(t); len(left) > 0 {
		t.Errorf("children left after Stop: %v", left)
	}
	log, err := os.ReadFile(filepath.Join(dir, "kwok.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "ignored SIGTERM") {
		t.Errorf("kwok.log does not record the SIGKILL:\n%s", tail(filepath.Join(dir, "kwok.log"), 5))
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
