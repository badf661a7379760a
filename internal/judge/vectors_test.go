package judge

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/vectortest"

	"github.com/prometheus/common/model"

	"github.com/ml-platform/platform/internal/stats"
)

// testdata/vectors.json holds the judge's answers as computed by a second
// implementation, testdata/gen_vectors.py (scipy), from the same inputs: the
// range-query answers of a canary and its stable. The Go judge must match
// it: counts exactly, and every number it computes to 1e-9 (absolute for
// probabilities, which live in [0, 1] and are compared with alpha; relative
// for everything with a scale: rates, ratios, bounds, latencies), as
// internal/stats' vectors do.

const vectorTol = 1e-9

func within(name string, got, want float64, relative bool) error {
	bound := vectorTol
	if relative {
		bound = math.Max(vectorTol*math.Abs(want), 1e-12)
	}
	if math.IsNaN(got) || math.Abs(got-want) > bound {
		return fmt.Errorf("%s = %.17g, want %.17g (diff %.3g)", name, got, want, got-want)
	}
	return nil
}

func withinOptional(name string, got, want *float64, relative bool) error {
	switch {
	case got == nil && want == nil:
		return nil
	case got == nil || want == nil:
		return fmt.Errorf("%s = %v, want %v", name, show(got), show(want))
	}
	return within(name, *got, *want, relative)
}

func show(x *float64) string {
	if x == nil {
		return "null"
	}
	return strconv.FormatFloat(*x, 'g', -1, 64)
}

type vectorFile struct {
	Cases  []vectorCase  `json:"cases"`
	Bounds []vectorBound `json:"rate_ratio_bounds"`
}

type vectorCase struct {
	Name    string `json:"name"`
	Request struct {
		Namespace string `json:"namespace"`
		Canary    string `json:"canary"`
		Stable    string `json:"stable"`
		WindowS   int64  `json:"window_s"`
		StepS     int64  `json:"step_s"`
	} `json:"request"`
	NowMs  int64 `json:"now_ms"`
	Policy struct {
		Alpha              float64 `json:"alpha"`
		ErrorMargin        float64 `json:"error_margin"`
		LatencyTolerance   float64 `json:"latency_tolerance"`
		MinRequests        int64   `json:"min_requests"`
		StableErrorCeiling float64 `json:"stable_error_ceiling"`
	} `json:"policy"`
	Series struct {
		Requests model.Matrix `json:"requests"`
		Buckets  model.Matrix `json:"buckets"`
		Sums     model.Matrix `json:"sums"`
	} `json:"series"`
	Want struct {
		Began *int64 `json:"began"`
		Looks []struct {
			At     int64        `json:"at"`
			Canary vectorCounts `json:"canary"`
			Stable vectorCounts `json:"stable"`
		} `json:"looks"`
		Result struct {
			Verdict  Verdict        `json:"verdict"`
			Looks    int            `json:"looks"`
			MaxLooks int            `json:"max_looks"`
			Began    *int64         `json:"began"`
			LastLook *int64         `json:"last_look"`
			Metrics  []vectorMetric `json:"metrics"`
		} `json:"result"`
	} `json:"want"`
}

type vectorCounts struct {
	Requests   int64          `json:"requests"`
	Errors     int64          `json:"errors"`
	LatencySum float64        `json:"latency_sum"`
	Buckets    [][2]any       `json:"buckets"`
	parsed     []stats.Bucket `json:"-"`
}

// UnmarshalJSON reads buckets as [le label, count] pairs.
func (c *vectorCounts) UnmarshalJSON(b []byte) error {
	type plain vectorCounts
	if err := json.Unmarshal(b, (*plain)(c)); err != nil {
		return err
	}
	for _, pair := range c.Buckets {
		label, ok1 := pair[0].(string)
		n, ok2 := pair[1].(float64)
		if !ok1 || !ok2 {
			return fmt.Errorf("bucket %v: want [le, count]", pair)
		}
		le, err := parseLe(label)
		if err != nil {
			return err
		}
		c.parsed = append(c.parsed, stats.Bucket{UpperBound: le, CumulativeCount: n})
	}
	return nil
}

type vectorMetric struct {
	Name      string   `json:"name"`
	Verdict   Verdict  `json:"verdict"`
	Canary    *float64 `json:"canary"`
	Stable    *float64 `json:"stable"`
	Effect    *float64 `json:"effect"`
	CILow     *float64 `json:"ci_low"`
	CIHigh    *float64 `json:"ci_high"`
	PValue    float64  `json:"p_value"`
	Alpha     float64  `json:"alpha"`
	Threshold float64  `json:"threshold"`
	NCanary   int64    `json:"n_canary"`
	NStable   int64    `json:"n_stable"`
	Look      int      `json:"look"`
}

type vectorBound struct {
	X       int64   `json:"x"`
	Y       int64   `json:"y"`
	NCanary int64   `json:"n_canary"`
	NStable int64   `json:"n_stable"`
	Alpha   float64 `json:"alpha"`
	Bound   float64 `json:"bound"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("testdata/vectors.json: %v", err)
	}
	if len(v.Cases) == 0 || len(v.Bounds) == 0 {
		t.Fatal("testdata/vectors.json has no cases")
	}
	return v
}

func (c vectorCase) policy() Policy {
	return Policy{Alpha: c.Policy.Alpha, ErrorMargin: c.Policy.ErrorMargin, LatencyTolerance: c.Policy.LatencyTolerance,
		MinRequests: c.Policy.MinRequests, StableErrorCeiling: c.Policy.StableErrorCeiling}
}

// judge runs the case through what GET /v1/judge does after the backend
// answered.
func (c vectorCase) judge() (Looks, Result, error) {
	r := c.Request
	grid := GridFor(time.UnixMilli(c.NowMs), time.Duration(r.WindowS)*time.Second, time.Duration(r.StepS)*time.Second)
	looks, err := BuildLooks(grid, r.Canary, r.Stable, Series{Requests: c.Series.Requests, Buckets: c.Series.Buckets, Sums: c.Series.Sums})
	if err != nil {
		return Looks{}, Result{}, err
	}
	return looks, Evaluate(looks, grid.MaxLooks(), c.policy()), nil
}

func compareCounts(name string, got Counts, want vectorCounts) error {
	errs := []error{}
	if got.Requests != want.Requests || got.Errors != want.Errors {
		errs = append(errs, fmt.Errorf("%s: %d requests, %d 5xx; want %d, %d", name, got.Requests, got.Errors, want.Requests, want.Errors))
	}
	errs = append(errs, within(name+" latency sum", got.LatencySum, want.LatencySum, true))
	if len(got.Buckets) != len(want.parsed) {
		errs = append(errs, fmt.Errorf("%s: buckets %v, want %v", name, got.Buckets, want.parsed))
	} else {
		for i, b := range got.Buckets {
			if b != want.parsed[i] {
				errs = append(errs, fmt.Errorf("%s: bucket %d is %v, want %v", name, i, b, want.parsed[i]))
			}
		}
	}
	return errors.Join(errs...)
}

// compare checks the judge's looks and answer against the case's.
func (c vectorCase) compare(looks Looks, res Result) error {
	w := c.Want
	var errs []error
	switch {
	case w.Began == nil && !looks.Began.IsZero():
		errs = append(errs, fmt.Errorf("began %s, want none", looks.Began))
	case w.Began != nil && looks.Began.Unix() != *w.Began:
		errs = append(errs, fmt.Errorf("began %s, want %s", looks.Began, time.Unix(*w.Began, 0).UTC()))
	}
	if len(looks.Looks) != len(w.Looks) {
		errs = append(errs, fmt.Errorf("%d looks, want %d", len(looks.Looks), len(w.Looks)))
	} else {
		for i, l := range looks.Looks {
			if l.At.Unix() != w.Looks[i].At {
				errs = append(errs, fmt.Errorf("look %d at %s, want %s", i+1, l.At, time.Unix(w.Looks[i].At, 0).UTC()))
			}
			errs = append(errs, compareCounts(fmt.Sprintf("look %d canary", i+1), l.Canary, w.Looks[i].Canary),
				compareCounts(fmt.Sprintf("look %d stable", i+1), l.Stable, w.Looks[i].Stable))
		}
	}
	wr := w.Result
	if res.Verdict != wr.Verdict || res.Looks != wr.Looks || res.MaxLooks != wr.MaxLooks {
		errs = append(errs, fmt.Errorf("verdict %s over %d of %d looks, want %s over %d of %d", res.Verdict, res.Looks, res.MaxLooks, wr.Verdict, wr.Looks, wr.MaxLooks))
	}
	for _, at := range []struct {
		name string
		got  *time.Time
		want *int64
	}{{"began", res.Began, wr.Began}, {"last look", res.LastLook, wr.LastLook}} {
		if (at.got == nil) != (at.want == nil) || (at.got != nil && at.got.Unix() != *at.want) {
			errs = append(errs, fmt.Errorf("result's %s %v, want %v", at.name, at.got, at.want))
		}
	}
	if res.Reason == "" {
		errs = append(errs, errors.New("no reason"))
	}
	if len(res.Metrics) != len(wr.Metrics) {
		return errors.Join(append(errs, fmt.Errorf("%d metrics, want %d", len(res.Metrics), len(wr.Metrics)))...)
	}
	for i, m := range res.Metrics {
		want := wr.Metrics[i]
		n := m.Name
		if m.Name != want.Name || m.Verdict != want.Verdict || m.NCanary != want.NCanary || m.NStable != want.NStable || m.Look != want.Look {
			errs = append(errs, fmt.Errorf("%s: %s, n %d/%d at look %d; want %s %s, n %d/%d at look %d",
				n, m.Verdict, m.NCanary, m.NStable, m.Look, want.Name, want.Verdict, want.NCanary, want.NStable, want.Look))
		}
		if m.Reason == "" {
			errs = append(errs, fmt.Errorf("%s: no reason", n))
		}
		// Latency's effect is a probability; errors' a ratio.
		effectRelative := m.Name == MetricErrors
		errs = append(errs,
			withinOptional(n+".canary", m.Canary, want.Canary, true),
			withinOptional(n+".stable", m.Stable, want.Stable, true),
			withinOptional(n+".effect", m.Effect, want.Effect, effectRelative),
			withinOptional(n+".ci_low", m.CILow, want.CILow, true),
			withinOptional(n+".ci_high", m.CIHigh, want.CIHigh, true),
			within(n+".p_value", m.PValue, want.PValue, false),
			within(n+".alpha", m.Alpha, want.Alpha, true),
			within(n+".threshold", m.Threshold, want.Threshold, true),
		)
	}
	return errors.Join(errs...)
}

func TestVectors(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			looks, res, err := c.judge()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.compare(looks, res); err != nil {
				t.Error(err)
			}
		})
	}
	verdicts := map[Verdict]int{}
	for _, c := range v.Cases {
		verdicts[c.Want.Result.Verdict]++
	}
	for _, want := range Verdicts {
		if verdicts[want] == 0 {
			t.Errorf("no case has the verdict %s", want)
		}
	}
}

func TestRateRatioLowerBoundVectors(t *testing.T) {
	for _, b := range loadVectors(t).Bounds {
		got, err := rateRatioLowerBound(b.Alpha, stats.Proportion{Successes: b.X, Trials: b.NCanary}, stats.Proportion{Successes: b.Y, Trials: b.NStable})
		if err != nil {
			t.Fatal(err)
		}
		if err := within(fmt.Sprintf("bound(x=%d, y=%d, n=%d/%d, alpha=%g)", b.X, b.Y, b.NCanary, b.NStable, b.Alpha), got, b.Bound, true); err != nil {
			t.Error(err)
		}
	}
}

// TestComparisonCatchesPerturbation plants a 1e-6 error in each kind of
// figure and expects the comparison to reject it: a comparison that could
// not fail would prove nothing.
func TestComparisonCatchesPerturbation(t *testing.T) {
	v := loadVectors(t)
	var c vectorCase
	for _, x := range v.Cases {
		if x.Name == "canary 5xx 3%" {
			c = x
		}
	}
	looks, res, err := c.judge()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.compare(looks, res); err != nil {
		t.Fatalf("unperturbed: %v", err)
	}
	nudge := func(x *float64) *float64 { y := *x * (1 + 1e-6); return &y }
	for name, plant := range map[string]func(r *Result, l *Looks){
		"errors p-value":    func(r *Result, l *Looks) { r.Metrics[0].PValue += 1e-6 },
		"errors bound":      func(r *Result, l *Looks) { r.Metrics[0].CILow = nudge(r.Metrics[0].CILow) },
		"errors rate":       func(r *Result, l *Looks) { r.Metrics[0].Canary = nudge(r.Metrics[0].Canary) },
		"latency effect":    func(r *Result, l *Looks) { e := *r.Metrics[1].Effect + 1e-6; r.Metrics[1].Effect = &e },
		"latency mean":      func(r *Result, l *Looks) { r.Metrics[1].Stable = nudge(r.Metrics[1].Stable) },
		"a count":           func(r *Result, l *Looks) { l.Looks[2].Stable.Requests++ },
		"a bucket":          func(r *Result, l *Looks) { l.Looks[0].Canary.Buckets[3].CumulativeCount++ },
		"a null":            func(r *Result, l *Looks) { r.Metrics[1].CIHigh = new(float64) },
		"the deciding look": func(r *Result, l *Looks) { r.Metrics[0].Look++ },
	} {
		r2, l2 := res, looks
		r2.Metrics = append([]Metric(nil), res.Metrics...)
		l2.Looks = append([]Look(nil), looks.Looks...)
		for i := range l2.Looks {
			l2.Looks[i].Canary = clone(l2.Looks[i].Canary)
		}
		plant(&r2, &l2)
		if c.compare(l2, r2) == nil {
			t.Errorf("planted %s: the comparison accepted it", name)
		}
	}
}

// TestVectorsFresh regenerates testdata/vectors.json with $STATS_PYTHON
// and fails if it differs from the committed file.
func TestVectorsFresh(t *testing.T) {
	t.Parallel()
	vectortest.Fresh(t, filepath.Join("testdata", "gen_vectors.py"), filepath.Join("testdata", "vectors.json"))
}
