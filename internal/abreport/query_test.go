package abreport

import (
	"math"
	"testing"
	"time"

	prommodel "github.com/prometheus/common/model"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func samples(start time.Time, values ...float64) []prommodel.SamplePair {
	var out []prommodel.SamplePair
	for i, v := range values {
		if math.IsNaN(v) {
			continue // no sample at this step
		}
		out = append(out, prommodel.SamplePair{Timestamp: prommodel.TimeFromUnixNano(start.Add(time.Duration(i) * time.Minute).UnixNano()), Value: prommodel.SampleValue(v)})
	}
	return out
}

// TestCountersFromRawSeries: a series present at the window's start counts
// from its value there, one born inside the window from 0, a drop is a
// restart whose new value is new events, and a missing sample carries on.
func TestCountersFromRawSeries(t *testing.T) {
	w := Window{Start: t0, End: t0.Add(5 * time.Minute), Step: time.Minute}
	steps := stepTimes(w)
	nan := math.NaN()
	for _, c := range []struct {
		name   string
		values []prommodel.SamplePair
		want   []int64
	}{
		{"present at the start", samples(t0, 100, 103, 110, 110, 111, 120), []int64{3, 10, 10, 11, 20}},
		{"born in the window", samples(t0.Add(2*time.Minute), 4, 9, 9, 12), []int64{0, 4, 9, 9, 12}},
		{"restarted", samples(t0, 50, 60, 2, 5, 5, 6), []int64{10, 12, 15, 15, 16}},
		{"a missing sample", samples(t0, 0, 1, nan, 5, 5, 7), []int64{1, 1, 5, 5, 7}},
		{"no samples", nil, []int64{0, 0, 0, 0, 0}},
	} {
		cum := make([]int64, len(steps))
		add(cum, w, steps, c.values)
		for i := range cum {
			if cum[i] != c.want[i] {
				t.Errorf("%s: %v, want %v", c.name, cum, c.want)
				break
			}
		}
	}
}

func TestQuantile(t *testing.T) {
	h := map[float64]float64{0.001: 10, 0.01: 90, 0.1: 100, math.Inf(1): 100}
	if q := Quantile(0.5, h); math.Abs(q-(0.001+0.009*40.0/80)) > 1e-12 {
		t.Errorf("p50 %v", q)
	}
	if q := Quantile(0.95, h); math.Abs(q-(0.01+0.09*5.0/10)) > 1e-12 {
		t.Errorf("p95 %v", q)
	}
	if q := Quantile(0.99, map[float64]float64{0.2: 1, math.Inf(1): 10}); q != 0.2 {
		t.Errorf("p99 in the +Inf bucket: %v, want the highest finite bound", q)
	}
	if !math.IsNaN(Quantile(0.5, map[float64]float64{math.Inf(1): 0})) || !math.IsNaN(Quantile(0.5, nil)) {
		t.Error("no observations: want NaN")
	}
}
