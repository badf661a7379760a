// Package fault is test-only fault injection for ml-inference: a switch that
// makes a chosen fraction of inference requests fail with a 500, so that the
// SLO pipeline (scrape, recording rules, burn-rate alerts) can be proven end
// to end against real failures (test/slolive).
//
// Nothing in a production build reaches this package. Only
// cmd/ml-inference/fault_inject.go imports it, and that file is compiled only
// with `go build -tags faultinject`; the default binary has neither the code
// nor the endpoint (cmd/ml-inference's tests check both). In a faultinject
// build the switch is off until someone PUTs a rate to /debug/fault on the
// --debug-addr listener, and it answers loopback clients only.
package fault

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// Path is where Handler is mounted on the debug listener.
const Path = "/debug/fault"

// scale is the resolution of the rate: parts per million.
const scale = 1_000_000

// Injector decides, request by request, whether to fail. The failures are
// spread deterministically, not drawn at random: with rate r, exactly
// floor(n*r) of n consecutive requests fail, evenly spaced (an error
// accumulator, like Bresenham's line). A test can then compare an SLI with the
// injected rate without binomial noise.
type Injector struct {
	mu       sync.Mutex
	ppm      int64 // error rate in parts per million
	acc      int64 // accumulated error credit, in parts per million
	requests int64 // requests seen since the rate was last set
	failed   int64 // of which failed
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

// Fail reports whether this request must fail.
func (in *Injector) Fail() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.requests++
	in.acc += in.ppm
	if in.acc >= scale {
		in.acc -= scale
		in.failed++
		return true
	}
	return false
}

// State is what the endpoint reports.
type State struct {
	ErrorRate float64 `json:"error_rate"`
	Requests  int64   `json:"requests"` // inference requests since the rate was set
	Failed    int64   `json:"failed"`   // of which were failed on purpose
}

// State returns the current rate and counters.
func (in *Injector) State() State {
	in.mu.Lock()
	defer in.mu.Unlock()
	return State{ErrorRate: float64(in.ppm) / scale, Requests: in.requests, Failed: in.failed}
}

// Handler serves Path: GET reports the State; PUT ?error_rate=R sets the rate
// (0 switches injection off) and reports the new State. Only loopback clients
// are served, whatever address the debug listener is bound to.
func (in *Injector) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopback(r.RemoteAddr) {
			http.Error(w, "fault injection answers loopback clients only", http.StatusForbidden)
			return
		}
		switch r.Method {
		case http.MethodGet:
		case http.MethodPut:
			rate, err := strconv.ParseFloat(r.URL.Query().Get("error_rate"), 64)
			if err == nil {
				err = in.SetRate(rate)
			}
			if err != nil {
				http.Error(w, "want ?error_rate= a number from 0 to 1: "+err.Error(), http.StatusBadRequest)
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

func loopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
