package slolive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/inferencetest"
)

// This file runs the real processes (ml-inference, VictoriaMetrics, vmalert),
// drives load and reads their HTTP APIs. slolive_test.go holds the checks.

var repoRoot = filepath.Join("..", "..")

// apiClient reads the processes' HTTP APIs; none of them should take long.
var apiClient = &http.Client{Timeout: 10 * time.Second}

// VictoriaMetrics and vmalert both log this line (lib/httpserver).
var vmListening = regexp.MustCompile(`started server at (http://[0-9.]+:[0-9]+)/`)

// server is one ml-inference process, built with the test-only fault switch
// (-tags faultinject): its API and its debug listener.
type server struct {
	*inferencetest.Process
	api, debug string // base URLs
}

func startServer(t *testing.T, dir, name string) *server {
	t.Helper()
	p := inferencetest.Run(t, inferencetest.Options{
		Tags: []string{"faultinject"},
		Args: []string{"--debug-addr", "127.0.0.1:0", "--models-dir", filepath.Join(repoRoot, "models")},
		// One access line per request: counted by the load instead.
		Noise:   `"msg":"request"`,
		LogFile: filepath.Join(dir, name+".log"),
	})
	return &server{Process: p, api: p.URL(""), debug: p.DebugURL("")}
}

// setErrorRate flips the fault switch (PUT /debug/fault).
func (s *server) setErrorRate(t *testing.T, rate float64) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, s.debug+"/debug/fault?error_rate="+strconv.FormatFloat(rate, 'f', -1, 64), nil)
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT /debug/fault?error_rate=%v on %s: %d %s", rate, s.api, resp.StatusCode, body)
	}
}

// load sends POST /predict at a steady rate from a few workers and counts
// what came back, as a client sees it.
type load struct {
	sent, ok, errors5xx, other atomic.Int64
	first5xx                   atomic.Int64 // unix nanoseconds of the first 5xx response; 0: none yet
	firstOther                 atomic.Value // string: the first unexpected outcome
	stop                       chan struct{}
	wg                         sync.WaitGroup
}

var texts = []string{
	`{"text":"The battery is great but the screen is dim"}`,
	`{"text":"I love this phone"}`,
	`{"text":"Terrible support, never again"}`,
	`{"text":"The box is blue"}`,
}

func startLoad(t *testing.T, base string, perSecond, workers int) *load {
	l := &load{stop: make(chan struct{})}
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: workers},
	}
	tokens := make(chan int, workers)
	l.wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		defer close(tokens)
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
				select {
				case tokens <- i:
				default: // every worker busy: drop the tick, keep the pace
				}
			}
		}
	})
	for range workers {
		l.wg.Go(func() {
			for i := range tokens {
				l.sent.Add(1)
				resp, err := client.Post(base+"/predict", "application/json", strings.NewReader(texts[i%len(texts)]))
				if err != nil {
					l.other.Add(1)
					l.firstOther.CompareAndSwap(nil, err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200:
					l.ok.Add(1)
				case resp.StatusCode >= 500:
					l.errors5xx.Add(1)
					l.first5xx.CompareAndSwap(0, time.Now().UnixNano())
				default:
					l.other.Add(1)
					l.firstOther.CompareAndSwap(nil, resp.Status)
				}
			}
		})
	}
	t.Cleanup(l.halt)
	return l
}

func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func (l *load) String() string {
	s := fmt.Sprintf("%d sent, %d ok, %d 5xx", l.sent.Load(), l.ok.Load(), l.errors5xx.Load())
	if n := l.other.Load(); n > 0 {
		s += fmt.Sprintf(", %d other (first: %v)", n, l.firstOther.Load())
	}
	return s
}

// getJSON GETs base+path with query params and decodes a Prometheus-style
// {"status":"success","data":...} answer into data.
func getJSON(ctx context.Context, base, path string, params url.Values, data any) error {
	u := base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || resp.StatusCode != 200 || env.Status != "success" {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, bytes.TrimSpace(body))
	}
	return json.Unmarshal(env.Data, data)
}

// sample is one series of an instant query result.
type sample struct {
	Metric map[string]string
	Value  float64
}

// query runs an instant query on VictoriaMetrics' Prometheus API.
func query(ctx context.Context, vm, q string) ([]sample, error) {
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := getJSON(ctx, vm, "/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	out := make([]sample, 0, len(data.Result))
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", q, r.Value, err)
		}
		out = append(out, sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// alert is one entry of vmalert's /api/v1/alerts.
type alert struct {
	Name     string            `json:"name"`
	State    string            `json:"state"` // pending or firing
	Value    string            `json:"value"`
	Labels   map[string]string `json:"labels"`
	ActiveAt time.Time         `json:"activeAt"`
}

func (a alert) String() string {
	return fmt.Sprintf("%s{severity=%q,namespace=%q} %s since %s (value %s)", a.Name, a.Labels["severity"], a.Labels["namespace"], a.State, a.ActiveAt.Format("15:04:05.000"), a.Value)
}

// alerts lists the pending and firing alerts of one vmalert.
func alerts(ctx context.Context, vmalert string) ([]alert, error) {
	var data struct {
		Alerts []alert `json:"alerts"`
	}
	err := getJSON(ctx, vmalert, "/api/v1/alerts", nil, &data)
	return data.Alerts, err
}

// ruleErrors lists the rules of one vmalert whose last evaluation failed,
// and how many rules were evaluated since `since`.
func ruleErrors(ctx context.Context, vmalert string, since time.Time) (errs []string, evaluated int, err error) {
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name           string    `json:"name"`
				LastError      string    `json:"lastError"`
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := getJSON(ctx, vmalert, "/api/v1/rules", nil, &data); err != nil {
		return nil, 0, err
	}
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			if r.LastError != "" {
				errs = append(errs, fmt.Sprintf("%s/%s: %s", g.Name, r.Name, r.LastError))
			}
			if r.LastEvaluation.After(since) {
				evaluated++
			}
		}
	}
	return errs, evaluated, nil
}

func TestMain(m *testing.M) { os.Exit(inferencetest.Main(m)) }
