package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoadShedding: past the in-flight limit the server answers 503 with
// Retry-After at once instead of queueing.
func TestLoadShedding(t *testing.T) {
	limits := DefaultLimits
	limits.MaxInFlight = 1
	ts := newTestServer(t, testOptions{limits: limits})

	// Hold the only slot with a request whose body arrives slowly.
	pr, pw := io.Pipe()
	held := make(chan int)
	go func() {
		req, _ := http.NewRequest("POST", ts.URL+"/predict", pr)
		req.Header.Set("Content-Type", "application/json")
		resp, err := ts.Client().Do(req)
		if err != nil {
			held <- -1
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	pw.Write([]byte(`{"text":`))
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, h, body := ts.do(t, "POST", "/predict", `{"text":"hello"}`)
		if status == 503 {
			if h.Get("Retry-After") != "1" || mustJSON[errBody](t, body).Error.Code != "overloaded" {
				t.Errorf("shed response: %v %s", h, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second request was never shed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pw.Write([]byte(`"done"}`))
	pw.Close()
	if status := <-held; status != 200 {
		t.Errorf("held request finished with %d", status)
	}
	if status, _, _ := ts.do(t, "POST", "/predict", `{"text":"hello"}`); status != 200 {
		t.Errorf("after the slot was freed: %d", status)
	}
	if !strings.Contains(scrape(t, ts), "inference_requests_shed_total 1") {
		t.Error("shed request not counted")
	}
	// Health and metrics are never shed.
	if status, _, _ := ts.do(t, "GET", "/health", ""); status != 200 {
		t.Errorf("health: %d", status)
	}
}

// TestReloadUnderLoad: versions are added, changed and reloaded while
// clients send requests; no request fails.
func TestReloadUnderLoad(t *testing.T) {
	dir := copyModels(t, "v1")
	ts := newTestServer(t, testOptions{modelsDir: dir})
	ctx, cancel := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := ts.Client().Post(ts.URL+"/predict", "application/json", strings.NewReader(`{"text":"great stuff"}`))
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprint("status ", resp.StatusCode))
				} else {
					ok.Add(1)
				}
			}
		})
	}
	for i := range 20 {
		if i%2 == 0 {
			copyDir(t, filepath.Join(repoModels, "v2"), filepath.Join(dir, "v2"))
		} else {
			os.RemoveAll(filepath.Join(dir, "v2"))
		}
		if err := ts.models.Reload(ctx); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(15 * time.Millisecond)
	}
	// A broken artifact is refused and the previous set keeps serving.
	os.WriteFile(filepath.Join(dir, "v1", "model.json"), []byte(`{"name": 1}`), 0o644)
	if err := ts.models.Reload(ctx); err == nil || !strings.Contains(err.Error(), "model.json") {
		t.Errorf("broken artifact: err %v, want an error naming model.json", err)
	}
	time.Sleep(30 * time.Millisecond)
	cancel()
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d requests failed (first: %v), %d succeeded", failed.Load(), firstFailure.Load(), ok.Load())
	}
	t.Logf("%d requests served across 20 reloads, 0 failed", ok.Load())
}

// TestPanicIsA500 shows our own faults become a JSON 500 that is counted and
// logged, and the server keeps serving.
func TestPanicIsA500(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	s := newServer(Config{Service: "ml-inference"}, ts.deps)
	h := s.middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"code":"internal"`) {
		t.Errorf("panic answered %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(ts.logs.String(), "panic serving request") {
		t.Error("panic not logged")
	}
	if !strings.Contains(ts.logs.String(), `"msg":"request","method":"GET","path":"/x","endpoint":"unmatched","status":500`) {
		t.Errorf("the 500 of a panic is not in the access log:\n%s", ts.logs.String())
	}
}
