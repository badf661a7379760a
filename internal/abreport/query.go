// Package abreport is the live read of an A/B experiment: it reads the
// per-version feedback, request, 5xx and latency-histogram counters of one
// namespace from a Prometheus HTTP API (VictoriaMetrics in the platform)
// over the experiment's window, reconstructs the cumulative counts at every
// step as internal/abtest's looks, and renders the verdict with its
// evidence: a table per arm, the tests, how the always-valid p-value and
// interval moved (a table and a PNG plot).
//
// Counts are rebuilt from the raw counters, series by series, not with
// increase(): Prometheus' increase() extrapolates and returns fractions; a
// series that starts inside the window counts from 0, and a counter that
// drops (a restarted process) counts its new value as new events. The
// window starts where model_traffic_weight_percent first showed the
// experiment's split without interruption up to its end, unless given.
package abreport

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	prommodel "github.com/prometheus/common/model"

	"github.com/ml-platform/platform/internal/abtest"
)

// inferenceEndpoints are the requests that run a model (the route patterns
// of /predict, /predict/batch and the OIP infer endpoints), as the
// dashboards and SLOs select them.
const inferenceEndpoints = `/predict|/predict/batch|/v2/models/.+/infer`

// MaxLooks bounds the looks a report reconstructs: the step grows with the
// window to stay under it.
const MaxLooks = 500

// Window is what to read.
type Window struct {
	Namespace          string
	Control, Treatment string
	// TreatmentPercent is the split's treatment share, to find the window's
	// start in model_traffic_weight_percent when Start is zero.
	TreatmentPercent float64
	Start, End       time.Time
	// MaxDuration bounds how far back the start is searched, and marks the
	// experiment over when the window is that long.
	MaxDuration time.Duration
	Step        time.Duration
	// LatencyThreshold is the bucket bound (seconds) above which a request
	// counts as slow.
	LatencyThreshold float64
}

// Data is what was read.
type Data struct {
	Window Window // with Start, End and Step as used
	Looks  []abtest.Look
	// Latency is each arm's request-duration histogram over the window
	// (bucket bound -> cumulative count), for its p95.
	Latency [2]map[float64]float64
	// Series counts the raw series read, per metric.
	Series map[string]int
}

// MaxDurationReached reports whether the window is the experiment's whole
// allowed duration.
func (d Data) MaxDurationReached() bool {
	return d.Window.MaxDuration > 0 && d.Window.End.Sub(d.Window.Start) >= d.Window.MaxDuration
}

// Read reads the window's counters and rebuilds the looks.
func Read(ctx context.Context, api promv1.API, w Window) (Data, error) {
	if w.End.IsZero() {
		w.End = time.Now()
	}
	if w.Step <= 0 {
		w.Step = time.Minute
	}
	sel := func(metric string, extra ...string) string {
		ms := append([]string{fmt.Sprintf("namespace=%q", w.Namespace), fmt.Sprintf("version=~%q", w.Control+"|"+w.Treatment)}, extra...)
		return metric + "{" + strings.Join(ms, ", ") + "}"
	}
	if w.Start.IsZero() {
		start, err := splitStart(ctx, api, w)
		if err != nil {
			return Data{}, err
		}
		w.Start = start
	}
	if !w.End.After(w.Start) {
		return Data{}, fmt.Errorf("the window %s to %s is empty", w.Start.Format(time.RFC3339), w.End.Format(time.RFC3339))
	}
	if min := w.End.Sub(w.Start) / MaxLooks; w.Step < min {
		w.Step = min.Round(time.Second)
	}
	d := Data{Window: w, Series: map[string]int{}}
	steps := stepTimes(w)

	feedback, err := d.counters(ctx, api, w, sel("model_feedback_total", `routing="split"`), "version", "outcome")
	if err != nil {
		return Data{}, err
	}
	requests, err := d.counters(ctx, api, w, sel("inference_requests_total", fmt.Sprintf("endpoint=~%q", inferenceEndpoints)), "version", "status")
	if err != nil {
		return Data{}, err
	}
	buckets, err := d.counters(ctx, api, w, sel("inference_request_duration_seconds_bucket", fmt.Sprintf("endpoint=~%q", inferenceEndpoints)), "version", "le")
	if err != nil {
		return Data{}, err
	}

	arms := [2]string{w.Control, w.Treatment}
	for k, at := range steps {
		l := abtest.Look{At: at}
		for i, v := range arms {
			var a abtest.Arm
			for key, cum := range feedback {
				if key[0] == v {
					a.Feedback += cum[k]
					if key[1] == "correct" {
						a.Correct += cum[k]
					}
				}
			}
			for key, cum := range requests {
				if key[0] == v {
					a.Requests += cum[k]
					if strings.HasPrefix(key[1], "5") {
						a.Errors += cum[k]
					}
				}
			}
			var fast, all int64
			for key, cum := range buckets {
				if key[0] != v {
					continue
				}
				le, err := parseLe(key[1])
				if err != nil {
					return Data{}, err
				}
				if le == w.LatencyThreshold {
					fast += cum[k]
				}
				if math.IsInf(le, 1) {
					all += cum[k]
				}
			}
			a.Slow = max(0, all-fast)
			if a.Slow > a.Requests {
				// The histogram and the request counter are scraped
				// together but are two series; keep the counts coherent.
				a.Slow = a.Requests
			}
			if i == 0 {
				l.Control = a
			} else {
				l.Treatment = a
			}
		}
		d.Looks = append(d.Looks, l)
	}
	for i, v := range arms {
		d.Latency[i] = map[float64]float64{}
		for key, cum := range buckets {
			if key[0] == v {
				le, _ := parseLe(key[1])
				d.Latency[i][le] += float64(cum[len(steps)-1])
			}
		}
	}
	return d, nil
}

func parseLe(s string) (float64, error) {
	le, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("bucket le=%q: %w", s, err)
	}
	return le, nil
}

// stepTimes are the looks' times: Start + k·Step up to End, and End.
func stepTimes(w Window) []time.Time {
	var out []time.Time
	for t := w.Start.Add(w.Step); t.Before(w.End); t = t.Add(w.Step) {
		out = append(out, t)
	}
	return append(out, w.End)
}

// counters reads the raw series of a counter over the window and returns,
// per value of the grouping labels, the cumulative count of new events at
// each step time since the window's start.
func (d *Data) counters(ctx context.Context, api promv1.API, w Window, selector string, by ...string) (map[[2]string][]int64, error) {
	steps := stepTimes(w)
	r := promv1.Range{Start: w.Start, End: w.End, Step: w.Step}
	v, _, _, err := api.QueryRange(ctx, selector, r)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", selector, err)
	}
	m, ok := v.(prommodel.Matrix)
	if !ok {
		return nil, fmt.Errorf("query %s: got %s, want a matrix", selector, v.Type())
	}
	d.Series[strings.SplitN(selector, "{", 2)[0]] += len(m)
	out := map[[2]string][]int64{}
	for _, s := range m {
		key := [2]string{string(s.Metric[prommodel.LabelName(by[0])]), string(s.Metric[prommodel.LabelName(by[1])])}
		cum := out[key]
		if cum == nil {
			cum = make([]int64, len(steps))
			out[key] = cum
		}
		add(cum, w, steps, s.Values)
	}
	return out, nil
}

// add accumulates one series' new events into cum: a series present at the
// window's start counts from its value there; one that appears later counts
// from 0 (it started inside the window); a drop is a restart whose new value
// is all new events.
func add(cum []int64, w Window, steps []time.Time, values []prommodel.SamplePair) {
	if len(values) == 0 {
		return
	}
	var total, prev float64
	i := 0
	if first := values[0]; !first.Timestamp.Time().After(w.Start) {
		prev = float64(first.Value)
		i = 1
	}
	for k, at := range steps {
		for ; i < len(values) && !values[i].Timestamp.Time().After(at); i++ {
			v := float64(values[i].Value)
			if v >= prev {
				total += v - prev
			} else {
				total += v
			}
			prev = v
		}
		cum[k] += int64(math.Round(total))
	}
}

// splitStart finds when the experiment's split began: the start of the last
// uninterrupted run, up to the window's end, of samples where
// model_traffic_weight_percent of the treatment equals its share.
func splitStart(ctx context.Context, api promv1.API, w Window) (time.Time, error) {
	lookback := w.MaxDuration
	if lookback <= 0 {
		lookback = 30 * 24 * time.Hour
	}
	from := w.End.Add(-lookback)
	step := max(w.Step, lookback/10000)
	q := fmt.Sprintf(`max(model_traffic_weight_percent{namespace=%q, version=%q})`, w.Namespace, w.Treatment)
	v, _, _, err := api.QueryRange(ctx, q, promv1.Range{Start: from, End: w.End, Step: step})
	if err != nil {
		return time.Time{}, fmt.Errorf("query %s: %w", q, err)
	}
	m, _ := v.(prommodel.Matrix)
	var values []prommodel.SamplePair
	if len(m) == 1 {
		values = m[0].Values
	}
	on := func(p prommodel.SamplePair) bool { return math.Abs(float64(p.Value)-w.TreatmentPercent) < 0.01 }
	end := len(values)
	for end > 0 && !on(values[end-1]) {
		end-- // the split may have ended (promoted or aborted) before the window's end
	}
	if end == 0 {
		return time.Time{}, fmt.Errorf("namespace %s never showed %s at %g%% of the traffic (model_traffic_weight_percent) in the %s before %s: has the experiment started, and has its overlay synced?",
			w.Namespace, w.Treatment, w.TreatmentPercent, lookback, w.End.Format(time.RFC3339))
	}
	begin := end - 1
	for begin > 0 && on(values[begin-1]) && values[begin].Timestamp.Sub(values[begin-1].Timestamp) <= 2*step {
		begin--
	}
	start := values[begin].Timestamp.Time()
	if begin > 0 {
		// The split appeared between the previous step and this one.
		start = values[begin-1].Timestamp.Time()
	}
	return start, nil
}

// Quantile is histogram_quantile over one arm's cumulative buckets, by
// linear interpolation inside the bucket (as Prometheus does); NaN with no
// observations.
func Quantile(q float64, cumulative map[float64]float64) float64 {
	bounds := make([]float64, 0, len(cumulative))
	for b := range cumulative {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 || !math.IsInf(bounds[len(bounds)-1], 1) {
		return math.NaN()
	}
	total := cumulative[bounds[len(bounds)-1]]
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range bounds {
		c := cumulative[b]
		if c >= rank {
			if math.IsInf(b, 1) {
				return lower // the highest finite bound, as Prometheus answers
			}
			if c == below {
				return b
			}
			return lower + (b-lower)*(rank-below)/(c-below)
		}
		lower, below = b, c
	}
	return lower
}
