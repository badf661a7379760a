package judge

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/ml-platform/platform/internal/stats"
)

// Label names of the scrape contract (docs: CONTRACTS, vmagent's scrape.yaml).
const (
	hashLabel   = "rollouts_pod_template_hash" // from the pod label rollouts-pod-template-hash
	statusLabel = "status"                     // the HTTP code
	leLabel     = "le"
)

// Grid is the instants at which the judge reads the counters: Start,
// Start+Step, ..., End (Points of them). Start and End are multiples of Step
// since the Unix epoch, so two calls made during the same canary read the
// same instants and see the same looks.
type Grid struct {
	Start time.Time
	Step  time.Duration
	// Points is the number of instants; the looks are at most Points-1.
	Points int
}

// GridFor is the grid that ends at the last multiple of step at or before
// now and reaches back at most window: MaxLooks = floor(window/step) looks
// after its first instant.
func GridFor(now time.Time, window, step time.Duration) Grid {
	stepMs := step.Milliseconds()
	end := now.UnixMilli() / stepMs * stepMs
	looks := int64(window / step)
	return Grid{Start: time.UnixMilli(end - looks*stepMs).UTC(), Step: step, Points: int(looks) + 1}
}

// End is the grid's last instant.
func (g Grid) End() time.Time { return g.At(g.Points - 1) }

// At is the grid's i-th instant.
func (g Grid) At(i int) time.Time { return g.Start.Add(time.Duration(i) * g.Step) }

// MaxLooks is the most looks any answer over this grid can hold: the number
// the latency test's alpha is split over.
func (g Grid) MaxLooks() int { return g.Points - 1 }

// index maps a sample's timestamp to its grid instant.
func (g Grid) index(t model.Time) (int, error) {
	d := int64(t) - g.Start.UnixMilli()
	step := g.Step.Milliseconds()
	if d < 0 || d%step != 0 || d/step >= int64(g.Points) {
		return 0, fmt.Errorf("sample at %s is not an instant of the query's grid (%s every %s, %d instants)",
			t.Time().UTC().Format(time.RFC3339Nano), g.Start.Format(time.RFC3339), g.Step, g.Points)
	}
	return int(d / step), nil
}

// Series are the backend's answers for one judgement, each a range query at
// the grid's instants of one family's raw counters (every pod, endpoint,
// status or bucket its own series), for both arms.
type Series struct {
	Requests model.Matrix // inference_requests_total
	Buckets  model.Matrix // inference_request_duration_seconds_bucket
	Sums     model.Matrix // inference_request_duration_seconds_sum
}

// Counts is one arm's cumulative counts since the analysis began.
type Counts struct {
	Requests int64 // inference requests answered
	Errors   int64 // of them, answered with a 5xx
	// Buckets is the cumulative latency histogram in Prometheus' shape (le,
	// count <= le), sorted by le; Buckets' +Inf count is the number of
	// observations.
	Buckets    []stats.Bucket
	LatencySum float64 // seconds, over the observations
}

// Observations is the number of latency observations (the +Inf bucket).
func (c Counts) Observations() int64 {
	if len(c.Buckets) == 0 {
		return 0
	}
	return int64(c.Buckets[len(c.Buckets)-1].CumulativeCount)
}

// Look is both arms' counts at one instant, cumulative since the analysis
// began.
type Look struct {
	At             time.Time
	Canary, Stable Counts
}

// Looks is what BuildLooks found.
type Looks struct {
	// Began is the instant the counts start from: the grid instant just
	// before the canary's first sample, or the grid's first instant when the
	// canary's series are older than the window. Zero when the canary has
	// no series at all.
	Began time.Time
	// Looks are the instants after Began up to the last one with data, oldest
	// first.
	Looks []Look
}

// arm tells canary series from stable ones.
type arm int

const (
	canaryArm arm = iota
	stableArm
)

// BuildLooks rebuilds the cumulative counts of every look from the raw
// counters. Each series (one pod, endpoint, status or bucket) is
// differenced on its own, then summed per arm, so that pods that restart,
// start or stop are counted exactly:
//
//   - a restart resets every counter of the process (the series that share
//     all labels but endpoint, status, version and le): where any of them
//     falls, each of them counts its value from 0. A sparse bucket whose
//     count after the restart happens to exceed its count before would
//     otherwise be read as a small increase, and the histogram would lose
//     observations;
//   - a series that first appears after the grid's first instant is a new
//     process (or a status it had not answered yet), counted from 0;
//   - a series that stops keeps its last count.
//
// The analysis begins at the grid instant before the canary's first sample
// (or at the grid's start if the canary is older than the window), and both
// arms are counted from there, so they cover the same period; stable's
// earlier traffic is not the canary's comparison. The looks are the
// instants after it up to the last one with a sample.
//
// Values must be whole counts for requests and buckets; an answer the judge
// cannot read (a series without the hash label, a sample off the grid, a
// malformed le or status) is an error: the backend's fault, not a verdict.
func BuildLooks(g Grid, canary, stable string, s Series) (Looks, error) {
	if g.Points < 1 || g.Step <= 0 {
		return Looks{}, fmt.Errorf("empty grid")
	}
	r := reader{grid: g, canary: canary, stable: stable, resets: map[string][]bool{}}
	var counters []counter
	for _, f := range []struct {
		family string
		m      model.Matrix
	}{{requestsFamily, s.Requests}, {bucketFamily, s.Buckets}, {sumFamily, s.Sums}} {
		for _, ss := range f.m {
			c, err := r.read(f.family, ss)
			if err != nil {
				return Looks{}, err
			}
			if len(c.at) > 0 {
				counters = append(counters, c)
			}
		}
	}
	var arms [2]armIncrements
	for i := range arms {
		arms[i] = armIncrements{
			requests: make([]float64, g.Points), errors: make([]float64, g.Points),
			sum: make([]float64, g.Points), buckets: map[float64][]float64{},
		}
	}
	canaryFirst, last := -1, -1
	for _, c := range counters {
		inc := r.increments(c)
		a := &arms[c.arm]
		switch c.family {
		case requestsFamily:
			addInto(a.requests, inc)
			if c.code >= 500 {
				addInto(a.errors, inc)
			}
			if c.arm == canaryArm && (canaryFirst < 0 || c.at[0] < canaryFirst) {
				canaryFirst = c.at[0]
			}
		case bucketFamily:
			into := a.buckets[c.le]
			if into == nil {
				into = make([]float64, g.Points)
				a.buckets[c.le] = into
			}
			addInto(into, inc)
		case sumFamily:
			addInto(a.sum, inc)
		}
		last = max(last, c.at[len(c.at)-1])
	}
	if canaryFirst < 0 {
		return Looks{}, nil
	}
	began := max(canaryFirst-1, 0)
	out := Looks{Began: g.At(began)}
	var cum [2]armCumulative
	for i := range arms {
		cum[i] = arms[i].cumulative()
	}
	for i := began + 1; i <= last; i++ {
		l := Look{At: g.At(i)}
		var err error
		if l.Canary, err = cum[canaryArm].since(began, i); err != nil {
			return Looks{}, fmt.Errorf("canary at %s: %w", l.At.Format(time.RFC3339), err)
		}
		if l.Stable, err = cum[stableArm].since(began, i); err != nil {
			return Looks{}, fmt.Errorf("stable at %s: %w", l.At.Format(time.RFC3339), err)
		}
		out.Looks = append(out.Looks, l)
	}
	return out, nil
}

// counter is one series as read: what it counts and its samples at the
// grid's instants.
type counter struct {
	family  string
	arm     arm
	code    int     // requests: the HTTP status
	le      float64 // buckets: the upper bound
	process string  // the labels that identify the process
	at      []int   // grid indices, increasing
	values  []float64
}

// reader reads series and remembers, per process, the grid instants at
// which one of its counters fell (a restart).
type reader struct {
	grid           Grid
	canary, stable string
	resets         map[string][]bool
}

// perRequest are the labels that vary within one process.
var perRequest = []model.LabelName{"endpoint", statusLabel, "version", leLabel}

func (r *reader) read(family string, ss *model.SampleStream) (counter, error) {
	c := counter{family: family}
	switch string(ss.Metric[hashLabel]) {
	case r.canary:
		c.arm = canaryArm
	case r.stable:
		c.arm = stableArm
	default:
		return counter{}, fmt.Errorf("%s%s: %s is neither the canary's %q nor the stable's %q", family, ss.Metric, hashLabel, r.canary, r.stable)
	}
	switch family {
	case requestsFamily:
		status := string(ss.Metric[statusLabel])
		code, err := strconv.Atoi(status)
		if err != nil || code < 100 || code > 599 {
			return counter{}, fmt.Errorf("%s%s: status %q is not an HTTP code", family, ss.Metric, status)
		}
		c.code = code
	case bucketFamily:
		le, err := parseLe(string(ss.Metric[leLabel]))
		if err != nil {
			return counter{}, fmt.Errorf("%s%s: %w", family, ss.Metric, err)
		}
		c.le = le
	}
	process := ss.Metric.Clone()
	for _, l := range perRequest {
		delete(process, l)
	}
	delete(process, model.MetricNameLabel)
	c.process = process.String()
	resets := r.resets[c.process]
	if resets == nil {
		resets = make([]bool, r.grid.Points)
		r.resets[c.process] = resets
	}
	for _, p := range ss.Values {
		i, err := r.grid.index(p.Timestamp)
		if err != nil {
			return counter{}, fmt.Errorf("%s%s: %w", family, ss.Metric, err)
		}
		v := float64(p.Value)
		at := p.Timestamp.Time().UTC().Format(time.RFC3339)
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return counter{}, fmt.Errorf("%s%s: value %v at %s is not a counter's", family, ss.Metric, v, at)
		}
		if n := len(c.at); n > 0 {
			if i <= c.at[n-1] {
				return counter{}, fmt.Errorf("%s%s: samples out of order at %s", family, ss.Metric, at)
			}
			if v < c.values[n-1] {
				resets[i] = true
			}
		}
		c.at = append(c.at, i)
		c.values = append(c.values, v)
	}
	return c, nil
}

// increments is what the counter added at each grid instant.
func (r *reader) increments(c counter) []float64 {
	inc := make([]float64, r.grid.Points)
	resets := r.resets[c.process]
	for k, i := range c.at {
		v := c.values[k]
		if k == 0 {
			if i > 0 {
				// First seen after the grid's start: a new process (or a
				// new status), whose counter started at 0.
				inc[i] = v
			}
			continue
		}
		prev := c.values[k-1]
		if v < prev || slices.Contains(resets[c.at[k-1]+1:i+1], true) {
			// The process restarted since the last sample: it counted v
			// since.
			inc[i] = v
		} else {
			inc[i] = v - prev
		}
	}
	return inc
}

func addInto(dst, src []float64) {
	for i, v := range src {
		dst[i] += v
	}
}

// parseLe reads a bucket's upper bound ("0.2", "+Inf").
func parseLe(s string) (float64, error) {
	le, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(le) {
		return 0, fmt.Errorf("le %q is not a bucket bound", s)
	}
	return le, nil
}

// armIncrements is one arm's increments per grid instant, summed over its
// series.
type armIncrements struct {
	requests, errors, sum []float64
	buckets               map[float64][]float64
}

// armCumulative is the running totals of an armIncrements.
type armCumulative struct {
	requests, errors, sum []float64
	les                   []float64 // sorted
	buckets               [][]float64
}

func prefix(xs []float64) []float64 {
	out := make([]float64, len(xs))
	var s float64
	for i, x := range xs {
		s += x
		out[i] = s
	}
	return out
}

func (a armIncrements) cumulative() armCumulative {
	c := armCumulative{requests: prefix(a.requests), errors: prefix(a.errors), sum: prefix(a.sum)}
	for le := range a.buckets {
		c.les = append(c.les, le)
	}
	slices.Sort(c.les)
	for _, le := range c.les {
		c.buckets = append(c.buckets, prefix(a.buckets[le]))
	}
	return c
}

// whole returns x as a count, or an error when it is not one.
func whole(what string, x float64) (int64, error) {
	if !(x >= 0) || x > 1<<53 || x != math.Trunc(x) {
		return 0, fmt.Errorf("%s: %v is not a whole count", what, x)
	}
	return int64(x), nil
}

// since is the counts accumulated after instant from up to instant to.
func (c armCumulative) since(from, to int) (Counts, error) {
	var out Counts
	var err error
	if out.Requests, err = whole("requests", c.requests[to]-c.requests[from]); err != nil {
		return Counts{}, err
	}
	if out.Errors, err = whole("5xx responses", c.errors[to]-c.errors[from]); err != nil {
		return Counts{}, err
	}
	out.LatencySum = c.sum[to] - c.sum[from]
	for i, le := range c.les {
		n, err := whole(fmt.Sprintf("latency bucket le=%v", le), c.buckets[i][to]-c.buckets[i][from])
		if err != nil {
			return Counts{}, err
		}
		out.Buckets = append(out.Buckets, stats.Bucket{UpperBound: le, CumulativeCount: float64(n)})
	}
	return out, nil
}
