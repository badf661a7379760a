package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ml-platform/platform/internal/stats"
)

// Verdict is the judge's answer, and each metric's.
type Verdict string

const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive"
)

// Verdicts lists every verdict (the values of the verdict metric label).
var Verdicts = []Verdict{Pass, Fail, Inconclusive}

// Metric names (the values of the metric label).
const (
	MetricErrors  = "errors"
	MetricLatency = "latency"
)

// Policy is how the judge decides. DefaultPolicy holds the defaults;
// docs/judge.md says why each is what it is.
type Policy struct {
	// Alpha is the probability, at most, of failing a canary that is no
	// worse than stable (beyond the margin and tolerance below), over both
	// metrics and every look of the window. Each metric spends half.
	Alpha float64
	// ErrorMargin is the relative excess of the canary's 5xx rate
	// tolerated: errors fail when the rate is shown to be above (1 +
	// ErrorMargin) times stable's.
	ErrorMargin float64
	// LatencyTolerance is the largest P(canary slower than stable) (ties
	// counted half; 0.5 is "no difference") tolerated: latency fails when
	// the effect is above it and the Mann-Whitney test rejects.
	LatencyTolerance float64
	// MinRequests is the number of requests (latency observations, for
	// latency) each arm needs before a metric can pass, and the canary
	// before latency can fail. The errors test is exact at any count, so it
	// may fail sooner.
	MinRequests int64
	// StableErrorCeiling is the 5xx rate of stable above which nothing
	// passes: a failing stable cannot vouch for a canary.
	StableErrorCeiling float64
}

// DefaultPolicy is the judge's default.
var DefaultPolicy = Policy{
	Alpha:              0.05,
	ErrorMargin:        0.25,
	LatencyTolerance:   0.6,
	MinRequests:        200,
	StableErrorCeiling: 0.01,
}

// Validate names the first field out of range.
func (p Policy) Validate() error {
	switch {
	case !(p.Alpha > 0 && p.Alpha < 1):
		return fmt.Errorf("alpha %v must be in (0, 1)", p.Alpha)
	case !(p.ErrorMargin >= 0) || math.IsInf(p.ErrorMargin, 0):
		return fmt.Errorf("error margin %v must be a finite number >= 0", p.ErrorMargin)
	case !(p.LatencyTolerance >= 0.5 && p.LatencyTolerance < 1):
		return fmt.Errorf("latency tolerance %v must be in [0.5, 1): it is the largest P(canary slower) tolerated, 0.5 meaning none", p.LatencyTolerance)
	case p.MinRequests < 1:
		return fmt.Errorf("minimum requests %d must be at least 1", p.MinRequests)
	case !(p.StableErrorCeiling > 0 && p.StableErrorCeiling <= 1):
		return fmt.Errorf("stable error ceiling %v must be in (0, 1]", p.StableErrorCeiling)
	}
	return nil
}

// errorAlpha and latencyAlpha are each metric's share of Alpha.
func (p Policy) errorAlpha() float64   { return p.Alpha / 2 }
func (p Policy) latencyAlpha() float64 { return p.Alpha / 2 }

// Result is the judge's answer: the body of GET /v1/judge.
type Result struct {
	Verdict Verdict  `json:"verdict"`
	Reason  string   `json:"reason"`
	Metrics []Metric `json:"metrics"`
	// Looks is the number of looks analysed; MaxLooks the most the window
	// can hold (the latency test's alpha is split over MaxLooks).
	Looks    int `json:"looks"`
	MaxLooks int `json:"max_looks"`
	// Began is the instant the counts start from; LastLook the last look's.
	// Both null when there is no canary data.
	Began    *time.Time `json:"began"`
	LastLook *time.Time `json:"last_look"`
}

// Metric is one metric's verdict and the figures that decided it: those of
// the first failing look if it failed, else of the last look.
type Metric struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	// Canary and Stable are the arms' 5xx rates (errors) or mean latencies
	// in seconds (latency); null without data.
	Canary *float64 `json:"canary"`
	Stable *float64 `json:"stable"`
	// Effect is the canary's 5xx rate over stable's (errors; null when
	// stable has no 5xx) or P(canary slower than stable) + P(tie)/2
	// (latency).
	Effect *float64 `json:"effect"`
	// CILow and CIHigh bound the effect; null when unbounded. Errors: the
	// always-valid lower bound of the rate ratio at confidence 1 - alpha (0
	// when the data do not place it above 1); the upper end is unbounded.
	// Latency: the test gives no interval (both null).
	CILow  *float64 `json:"ci_low"`
	CIHigh *float64 `json:"ci_high"`
	// PValue is compared with Alpha: errors' always-valid p-value, or
	// latency's one-sided Mann-Whitney p-value times MaxLooks (Bonferroni),
	// capped at 1.
	PValue float64 `json:"p_value"`
	// Alpha is this metric's share of the policy's alpha.
	Alpha float64 `json:"alpha"`
	// Threshold is what the effect must exceed to fail: 1 + margin on the
	// rate ratio (errors fail when CILow exceeds it), or the latency
	// tolerance (latency fails when Effect exceeds it and PValue <= Alpha).
	Threshold float64 `json:"threshold"`
	// NCanary and NStable are the arms' requests (errors) or latency
	// observations (latency).
	NCanary int64 `json:"n_canary"`
	NStable int64 `json:"n_stable"`
	// Look is the 1-based look these figures are from; 0 when none.
	Look   int    `json:"look"`
	Reason string `json:"reason"`
}

func ptr(x float64) *float64 { return &x }

// Evaluate judges the looks of one canary. maxLooks is the grid's
// MaxLooks.
func Evaluate(l Looks, maxLooks int, p Policy) Result {
	res := Result{Looks: len(l.Looks), MaxLooks: maxLooks}
	if len(l.Looks) > 0 {
		began, last := l.Began, l.Looks[len(l.Looks)-1].At
		res.Began, res.LastLook = &began, &last
	}
	res.Metrics = []Metric{evaluateErrors(l, p), evaluateLatency(l, maxLooks, p)}
	res.Verdict, res.Reason = combine(res.Metrics)
	return res
}

// combine is the overall verdict: fail if any metric fails, else
// inconclusive if any is, else pass; the reason names the metrics that
// decided it.
func combine(ms []Metric) (Verdict, string) {
	verdict := Pass
	for _, m := range ms {
		switch {
		case m.Verdict == Fail:
			verdict = Fail
		case m.Verdict == Inconclusive && verdict == Pass:
			verdict = Inconclusive
		}
	}
	var reasons []string
	for _, m := range ms {
		if m.Verdict == verdict {
			reasons = append(reasons, m.Name+": "+m.Reason)
		}
	}
	return verdict, strings.Join(reasons, "; ")
}

// noLooks is the reason when there is nothing to compare yet.
func noLooks(l Looks) string {
	if l.Began.IsZero() {
		return "no canary requests in the window"
	}
	return fmt.Sprintf("no sample after the analysis began at %s", l.Began.UTC().Format(time.RFC3339))
}

// stableFailing says why stable cannot vouch for a canary, or "".
func stableFailing(last Look, p Policy) string {
	s := last.Stable
	if s.Requests == 0 {
		return ""
	}
	if rate := float64(s.Errors) / float64(s.Requests); rate > p.StableErrorCeiling {
		return fmt.Sprintf("stable's own 5xx rate is %s (%d of %d), above the ceiling %s: a failing stable cannot vouch for a canary",
			percent(rate), s.Errors, s.Requests, percent(p.StableErrorCeiling))
	}
	return ""
}

func percent(x float64) string { return fmt.Sprintf("%.3g%%", 100*x) }

func proportion(c Counts) stats.Proportion {
	return stats.Proportion{Successes: c.Errors, Trials: c.Requests}
}

// evaluateErrors runs stats.RateRatioTest over every look at which both
// arms have requests (a look without them carries no evidence).
func evaluateErrors(l Looks, p Policy) Metric {
	alpha := p.errorAlpha()
	m := Metric{Name: MetricErrors, Verdict: Inconclusive, PValue: 1, Alpha: alpha, Threshold: 1 + p.ErrorMargin}
	if len(l.Looks) == 0 {
		m.Reason = noLooks(l)
		return m
	}
	test := stats.RateRatioTest{Alpha: alpha, Margin: p.ErrorMargin, PriorA: 1, PriorB: 1}
	bound := 0.0 // the running maximum of the looks' lower bounds
	decided, failed := -1, false
	for k, look := range l.Looks {
		if look.Canary.Requests == 0 || look.Stable.Requests == 0 {
			continue
		}
		c, s := proportion(look.Canary), proportion(look.Stable)
		r, err := test.Look(c, s)
		if err != nil {
			m.Reason = fmt.Sprintf("look %d: %v", k+1, err)
			return m
		}
		lb, err := rateRatioLowerBound(alpha, c, s)
		if err != nil {
			m.Reason = fmt.Sprintf("look %d: %v", k+1, err)
			return m
		}
		m.PValue = math.Min(m.PValue, r.PValue)
		bound = math.Max(bound, lb)
		decided = k
		if r.Reject {
			failed = true
			break
		}
	}
	last := l.Looks[len(l.Looks)-1]
	if decided < 0 {
		if last.Canary.Requests == 0 {
			m.Reason = "no canary requests in the window"
		} else {
			m.Reason = "no stable requests in the window"
		}
		m.NCanary, m.NStable = last.Canary.Requests, last.Stable.Requests
		return m
	}
	look := l.Looks[decided]
	c, s := look.Canary, look.Stable
	m.Look, m.NCanary, m.NStable = decided+1, c.Requests, s.Requests
	rc, rs := float64(c.Errors)/float64(c.Requests), float64(s.Errors)/float64(s.Requests)
	m.Canary, m.Stable, m.CILow = ptr(rc), ptr(rs), ptr(bound)
	if s.Errors > 0 {
		m.Effect = ptr(rc / rs)
	}
	rates := fmt.Sprintf("canary 5xx %s (%d of %d) vs stable %s (%d of %d)", percent(rc), c.Errors, c.Requests, percent(rs), s.Errors, s.Requests)
	switch {
	case failed:
		m.Verdict = Fail
		m.Reason = fmt.Sprintf("%s at look %d: the canary's rate is at least %.3g times stable's (always-valid bound, confidence %g), above the %.3g tolerated",
			rates, m.Look, bound, 1-alpha, m.Threshold)
	case stableFailing(last, p) != "":
		m.Reason = stableFailing(last, p)
	case c.Requests < p.MinRequests || s.Requests < p.MinRequests:
		m.Reason = fmt.Sprintf("%s: fewer than the %d requests per arm needed to pass", rates, p.MinRequests)
	default:
		m.Verdict = Pass
		m.Reason = fmt.Sprintf("%s over %d looks: not shown above %.3g times stable's (p %.3g > %g)", rates, m.Look, m.Threshold, m.PValue, alpha)
	}
	return m
}

// rateRatioLowerBound is the largest ratio ρ >= 1 that RateRatioTest (with
// margin ρ - 1) rejects at this look: the lower end of the test's
// always-valid confidence set {ρ : not rejected} (ρ's the set excludes form
// an interval [1, bound) because the mixture ratio falls as the null ratio
// rises), or 0 when it does not reject ρ = 1 (the set reaches below 1, where
// the test is not defined; 0 is then the bound that holds). The crossing
// is found by bisection on ln ρ to the last few bits.
func rateRatioLowerBound(alpha float64, canary, stable stats.Proportion) (float64, error) {
	rejects := func(rho float64) (bool, error) {
		r, err := stats.RateRatioTest{Alpha: alpha, Margin: rho - 1, PriorA: 1, PriorB: 1}.Look(canary, stable)
		return r.Reject, err
	}
	ok, err := rejects(1)
	if err != nil || !ok {
		return 0, err
	}
	lo, hi := 1.0, 2.0
	for {
		ok, err := rejects(hi)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		lo, hi = hi, hi*2
		if hi > 1e300 {
			return lo, nil
		}
	}
	for range 200 {
		if hi/lo-1 < 1e-15 {
			break
		}
		mid := math.Sqrt(lo * hi)
		ok, err := rejects(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return math.Sqrt(lo * hi), nil
}

// evaluateLatency runs stats.MannWhitney on the two latency histograms at
// every look, and fails at the first look where the canary has at least
// MinRequests observations, P(canary slower) is above the tolerance and
// the one-sided test rejects at alpha/maxLooks (Bonferroni: over every look
// the window can hold, the chance that any rejects when the canary is no
// slower is at most alpha).
func evaluateLatency(l Looks, maxLooks int, p Policy) (m Metric) {
	alpha := p.latencyAlpha()
	m = Metric{Name: MetricLatency, Verdict: Inconclusive, PValue: 1, Alpha: alpha, Threshold: p.LatencyTolerance}
	if len(l.Looks) == 0 {
		m.Reason = noLooks(l)
		return m
	}
	last := l.Looks[len(l.Looks)-1]
	type figures struct {
		k              int
		effect, p, raw float64
	}
	var at *figures
	skipped, skipReason := 0, ""
	for k, look := range l.Looks {
		nc, ns := look.Canary.Observations(), look.Stable.Observations()
		if nc == 0 || ns == 0 {
			continue
		}
		cb, sb, err := sharedBounds(look.Canary.Buckets, look.Stable.Buckets)
		if err != nil {
			m.Reason = fmt.Sprintf("look %d: %v", k+1, err)
			return m
		}
		hc, hs, err := histograms(cb, sb)
		if err != nil {
			// A snapshot in which one bucket series is a scrape ahead of
			// another can be non-monotone; the look is skipped rather than
			// the metric given up.
			skipped, skipReason = skipped+1, fmt.Sprintf("look %d: %v", k+1, err)
			continue
		}
		f := figures{k: k, effect: 0.5, raw: 1}
		r, err := stats.MannWhitney(hc, hs)
		switch {
		case errors.Is(err, stats.ErrNoVariance):
			// Every observation in one bucket: no difference at the
			// histogram's resolution.
		case err != nil:
			m.Reason = fmt.Sprintf("look %d: %v", k+1, err)
			return m
		default:
			f.effect, f.raw = r.Effect, r.PGreater
		}
		f.p = math.Min(1, f.raw*float64(maxLooks))
		at = &f
		if nc >= p.MinRequests && f.effect > p.LatencyTolerance && f.p <= alpha {
			break
		}
	}
	if at == nil {
		switch {
		case skipped > 0:
			m.Reason = fmt.Sprintf("no look with consistent latency histograms (%s)", skipReason)
		case last.Canary.Observations() == 0:
			m.Reason = "no canary latency observations in the window"
		default:
			m.Reason = "no stable latency observations in the window"
		}
		m.NCanary, m.NStable = last.Canary.Observations(), last.Stable.Observations()
		return m
	}
	defer func() { // m is the named result: the note reaches the caller
		if skipped > 0 {
			m.Reason += fmt.Sprintf(" (%d looks skipped, the last: %s)", skipped, skipReason)
		}
	}()
	look := l.Looks[at.k]
	c, s := look.Canary, look.Stable
	m.Look, m.NCanary, m.NStable = at.k+1, c.Observations(), s.Observations()
	m.Effect, m.PValue = ptr(at.effect), at.p
	mc, ms := c.LatencySum/float64(m.NCanary), s.LatencySum/float64(m.NStable)
	m.Canary, m.Stable = ptr(mc), ptr(ms)
	means := fmt.Sprintf("mean latency canary %s vs stable %s, P(canary slower) %.3f", millis(mc), millis(ms), at.effect)
	failed := m.NCanary >= p.MinRequests && at.effect > p.LatencyTolerance && at.p <= alpha
	switch {
	case stableFailing(last, p) != "":
		// A stable answering fast 5xx looks faster than it is.
		m.Reason = stableFailing(last, p)
	case failed:
		m.Verdict = Fail
		m.Reason = fmt.Sprintf("%s at look %d: above the %.3g tolerated, and the one-sided Mann-Whitney test rejects (p %.3g x %d looks = %.3g <= %g)",
			means, m.Look, p.LatencyTolerance, at.raw, maxLooks, at.p, alpha)
	case m.NCanary < p.MinRequests || m.NStable < p.MinRequests:
		m.Reason = fmt.Sprintf("%s: fewer than the %d observations per arm needed", means, p.MinRequests)
	default:
		m.Verdict = Pass
		if at.effect > p.LatencyTolerance {
			m.Reason = fmt.Sprintf("%s over %d looks: above the %.3g tolerated, but not significant (p %.3g x %d looks = %.3g > %g)",
				means, m.Look, p.LatencyTolerance, at.raw, maxLooks, at.p, alpha)
		} else {
			m.Reason = fmt.Sprintf("%s over %d looks: within the %.3g tolerated", means, m.Look, p.LatencyTolerance)
		}
	}
	return m
}

func millis(seconds float64) string { return fmt.Sprintf("%.3g ms", 1000*seconds) }

// sharedBounds restricts both cumulative histograms to the bucket bounds
// they share (a canary built with other buckets than stable's is compared
// at the coarser resolution both have). The test needs +Inf and one more.
func sharedBounds(canary, stable []stats.Bucket) ([]stats.Bucket, []stats.Bucket, error) {
	if !slices.EqualFunc(canary, stable, func(a, b stats.Bucket) bool { return a.UpperBound == b.UpperBound }) {
		canary, stable = sharedBuckets(canary, stable)
	}
	if len(canary) < 2 || !math.IsInf(canary[len(canary)-1].UpperBound, 1) {
		var les []float64
		for _, b := range canary {
			les = append(les, b.UpperBound)
		}
		return nil, nil, fmt.Errorf("the arms' latency histograms share %d bucket bounds (%v); the test needs +Inf and at least one more", len(les), les)
	}
	return canary, stable, nil
}

// histograms turns both cumulative histograms into per-bucket counts.
func histograms(canary, stable []stats.Bucket) (stats.Histogram, stats.Histogram, error) {
	hc, err := stats.HistogramFromCumulative(canary)
	if err != nil {
		return stats.Histogram{}, stats.Histogram{}, fmt.Errorf("canary latency: %w", err)
	}
	hs, err := stats.HistogramFromCumulative(stable)
	if err != nil {
		return stats.Histogram{}, stats.Histogram{}, fmt.Errorf("stable latency: %w", err)
	}
	return hc, hs, nil
}

// sharedBuckets keeps the buckets whose bounds both arms have.
func sharedBuckets(canary, stable []stats.Bucket) ([]stats.Bucket, []stats.Bucket) {
	inStable := map[float64]bool{}
	for _, b := range stable {
		inStable[b.UpperBound] = true
	}
	shared := map[float64]bool{}
	for _, b := range canary {
		if inStable[b.UpperBound] {
			shared[b.UpperBound] = true
		}
	}
	keep := func(bs []stats.Bucket) []stats.Bucket {
		var out []stats.Bucket
		for _, b := range bs {
			if shared[b.UpperBound] {
				out = append(out, b)
			}
		}
		return out
	}
	return keep(canary), keep(stable)
}
