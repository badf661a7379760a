package proctest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The test binary itself is the program: with PROCTEST_SERVE set it logs a
// line and serves 200 on a loopback port.
func TestMain(m *testing.M) {
	if os.Getenv("PROCTEST_SERVE") != "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		fmt.Printf("serving on http://%s/\n", l.Addr())
		http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	}
	if os.Getenv("PROCTEST_FAIL") != "" {
		fmt.Println("giving up")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func TestStartWaitAndStop(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := Start(t, t.TempDir(), "server", []string{"PROCTEST_SERVE=1"}, self)
	url := p.WaitLog(t, regexp.MustCompile(`serving on (http://\S+)`), 10*time.Second)
	p.WaitOK(t, url+"health", 10*time.Second)
	if !strings.Contains(p.Tail(5), "serving on") {
		t.Errorf("tail: %q", p.Tail(5))
	}
}

// A program that exits is noticed: the wait fails at once with its log
// (run as a subprocess test, whose failure is the expected outcome).
func TestExitIsReported(t *testing.T) {
	if os.Getenv("PROCTEST_INNER") != "" {
		self, _ := os.Executable()
		p := Start(t, t.TempDir(), "quitter", []string{"PROCTEST_FAIL=1", "PROCTEST_INNER="}, self)
		p.WaitLog(t, regexp.MustCompile(`(never logged)`), time.Minute)
		return
	}
	self, _ := os.Executable()
	start := time.Now()
	out, err := execSelf(self, "-test.run=^TestExitIsReported$", "PROCTEST_INNER=1")
	if err == nil || !strings.Contains(out, "quitter exited before logging") || !strings.Contains(out, "giving up") {
		t.Fatalf("want the inner test to fail naming the exit and the log: err %v\n%s", err, out)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the exit took %v to notice", took)
	}
}

func execSelf(self, arg, env string) (string, error) {
	cmd := exec.Command(self, arg)
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
