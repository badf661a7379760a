// Package fault is test-only fault injection for ml-inference: a switch that
// makes a chosen fraction of inference requests fail with a 500, and one that
// adds a fixed latency to every inference request, so that the SLO pipeline
// (scrape, recording rules, burn-rate alerts; test/slolive) and the canary
// analysis (test/delivery: a version that errors, a version that is only
// slower) can be proven end to end against real failures.
//
// Nothing in a production build reaches this package. Only
// cmd/ml-inference/fault_inject.go imports it, and that file is compiled only
// with `go build -tags faultinject`; the default binary has neither the code
// nor the endpoint (cmd/ml-inference's tests check both). In a faultinject
// build both switches are off until someone PUTs a rate or a latency to
// /debug/fault on the --debug-addr listener, and it answers loopback clients
// only.
package fault

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// MaxLatency bounds the injected latency: far beyond any test's need, short
// of the server's write timeout.
const MaxLatency = 10 * time.Second

// Path is where Handler is mounted on the debug listener.
const Path = "/debug/fault"

// scale is the resolution of the rate: parts per million.
const scale = 1_000_000

// Injector decides, request by request, whether to fail. The failures are
// spread deterministically, not drawn at random: with rate r, exactly
// floor(n*r) of n consecutive requests fail, evenly spaced (an error
// accumulator, like Bresenham's line). A test can then compare an SLI with the
// injected rate without binomial noise.
//
// The latency, when set, delays every inference request by exactly that
// much before it is served (no jitter: a test compares a latency histogram
// with it).
type Injector struct {
	mu       sync.Mutex
	ppm      int64 // error rate in parts per million
	acc      int64 // accumulated error credit, in parts per million
	requests int64 // requests seen since the rate was last set
	failed   int64 // of which failed
	latency  time.Duration
}

// New returns an injector that fails nothing.
func New() *Injector { return &Injector{} }

// SetRate sets the fraction of requests to fail, 0 to 1, and restarts the
// spreading and the counters.
func (in *Injector) SetRate(rate float64) error {
	if !(rate >= 0 && rate <= 1) { // also rejects NaN
		return fmt.Errorf("error rate %v is not between 0 and 1", rate)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.ppm = int64(rate*scale + 0.5)
	in.acc, in.requests, in.failed = 0, 0, 0
	return nil
}

// SetLatency sets the delay added to every inference request, 0 to
// MaxLatency (0 switches it off).
func (in *Injector) SetLatency(d time.Duration) error {
	if d < 0 || d > MaxLatency {
		return fmt.Errorf("latency %v is not between 0 and %v", d, MaxLatency)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.latency = d
	return nil
}

// Fail reports whether this request must fail.
func (in *Injector) Fail() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.fail()
}

func (in *Injector) fail() bool {
	in.requests++
	in.acc += in.ppm
	if in.acc >= scale {
		in.acc -= scale
		in.failed++
		return true
	}
	return false
}

// Decide is the per-request decision (server.Deps.Fault): how long to delay
// the request, and whether to fail it.
func (in *Injector) Decide() (delay time.Duration, fail bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.latency, in.fail()
}

// State is what the endpoint reports.
type State struct {
	ErrorRate float64 `json:"error_rate"`
	LatencyMS float64 `json:"latency_ms"` // added to every inference request
	Requests  int64   `json:"requests"`   // inference requests since the rate was set
	Failed    int64   `json:"failed"`     // of which were failed on purpose
}

// State returns the current rate, latency and counters.
func (in *Injector) State() State {
	in.mu.Lock()
	defer in.mu.Unlock()
	return State{ErrorRate: float64(in.ppm) / scale, LatencyMS: float64(in.latency) / float64(time.Millisecond),
		Requests: in.requests, Failed: in.failed}
}

// Handler serves Path: GET reports the State; PUT sets the error rate
// (?error_rate=R, 0 to 1), the latency (?latency=D, a Go duration such as
// 50ms), or both (0 switches either off), and reports the new State. A PUT
// that sets neither, or an invalid value, is a 400 and changes nothing. Only
// loopback clients are served, whatever address the debug listener is bound
// to.
func (in *Injector) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopback(r.RemoteAddr) {
			http.Error(w, "fault injection answers loopback clients only", http.StatusForbidden)
			return
		}
		switch r.Method {
		case http.MethodGet:
		case http.MethodPut:
			if err := in.put(r); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		default:
			w.Header().Set("Allow", "GET, PUT")
			http.Error(w, "use GET or PUT", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(in.State())
	})
}

// put applies a PUT's parameters, all or none.
func (in *Injector) put(r *http.Request) error {
	q := r.URL.Query()
	_, hasRate := q["error_rate"]
	_, hasLatency := q["latency"]
	if !hasRate && !hasLatency {
		return fmt.Errorf("want ?error_rate= (a number from 0 to 1) and/or ?latency= (a duration, 0 to %v)", MaxLatency)
	}
	var rate float64
	var latency time.Duration
	var err error
	if hasRate {
		if rate, err = strconv.ParseFloat(q.Get("error_rate"), 64); err != nil || !(rate >= 0 && rate <= 1) {
			return fmt.Errorf("error_rate %q: want a number from 0 to 1", q.Get("error_rate"))
		}
	}
	if hasLatency {
		if latency, err = time.ParseDuration(q.Get("latency")); err != nil || latency < 0 || latency > MaxLatency {
			return fmt.Errorf("latency %q: want a duration from 0 to %v, e.g. 50ms", q.Get("latency"), MaxLatency)
		}
	}
	if hasRate {
		if err := in.SetRate(rate); err != nil {
			return err
		}
	}
	if hasLatency {
		return in.SetLatency(latency)
	}
	return nil
}

func loopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
