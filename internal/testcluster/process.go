package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is one component the cluster runs (envtest runs etcd and
// kube-apiserver itself). Its stdout and stderr go to <dir>/<name>.log.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed once cmd.Wait returned; err is set then
	err  error
}

// startProcess starts bin with args in its own process group, so that stop
// reaches anything it spawns, and with SIGKILL as its parent-death signal, so
// that it dies with the test binary even when Stop never runs (a panic, a
// test timeout). A goroutine owns cmd.Wait; stop waits for it.
func startProcess(dir, name, bin string, args, env []string) (*process, error) {
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(logFile, "testcluster: %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &process{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, errors.New("exited with status 0")
		}
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits until the process has been reaped.
func (p *process) stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid // Setpgid: the group is named after its leader
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			fmt.Fprintf(p.log, "testcluster: %s ignored SIGTERM for %v: SIGKILL\n", p.name, grace)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Anything the leader left behind in its group goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	p.log.Close()
}

// waitUntil polls ready every interval until it returns true, the process
// exits, or ctx ends; the error then names the component and quotes the end
// of its log.
func (p *process) waitUntil(ctx context.Context, what string, ready func(context.Context) (bool, error)) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := ready(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if gone, why := p.exited(); gone {
			return fmt.Errorf("%s %s before %s; last lines of %s:\n%s", p.name, why, what, p.log.Name(), tail(p.log.Name(), 20))
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("%s: not %s after %v", p.name, what, ctx.Err())
			if last != nil {
				msg += " (last check: " + last.Error() + ")"
			}
			return fmt.Errorf("%s; last lines of %s:\n%s", msg, p.log.Name(), tail(p.log.Name(), 20))
		case <-tick.C:
		case <-p.done:
		}
	}
}

// httpOK is a readiness check: GET url answers 200.
func httpOK(client *http.Client, url string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return true, nil
	}
}

// freePort asks the kernel for a free TCP port on host ("" = every
// interface). Another process may take it before ours binds it; the
// component then fails to start and says so in its log.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
