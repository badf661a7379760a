//go:build !faultinject

package main

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// TestDefaultBuildHasNoFaultSwitch: the binary a normal `go build` makes
// cannot inject faults. Its debug listener answers 404 on /debug/fault (while
// pprof, on the same listener, answers), inference is unaffected, and the
// fault package is not even linked in. The switch exists only in binaries
// built with -tags faultinject (fault_inject.go, used by test/slolive).
func TestDefaultBuildHasNoFaultSwitch(t *testing.T) {
	if faultHook != nil {
		t.Fatal("faultHook is set in a build without the faultinject tag")
	}
	p := start(t, "--models-dir", repoModels, "--debug-addr", "127.0.0.1:0")
	debugAddr := p.DebugAddr
	client := &http.Client{}
	status := func(method, url string, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("GET", "http://"+debugAddr+"/debug/pprof/", ""); got != 200 {
		t.Fatalf("pprof on the debug listener: %d", got)
	}
	for _, m := range []string{"PUT", "GET"} {
		if got := status(m, "http://"+debugAddr+"/debug/fault?error_rate=1", ""); got != 404 {
			t.Errorf("%s /debug/fault on the default build: %d, want 404", m, got)
		}
	}
	for range 20 {
		if got := status("POST", p.URL("/predict"), `{"text":"fine"}`); got != 200 {
			t.Fatalf("/predict after PUT /debug/fault: %d", got)
		}
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "/internal/fault\n") {
		t.Error("the default build of ml-inference links internal/fault")
	}
}
