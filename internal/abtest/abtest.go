// Package abtest decides an A/B experiment between two model versions from
// its looks: the cumulative counts, at each look, of user feedback (correct
// or not) and of requests (5xx, slow) per arm. It is pure: numbers in, a
// verdict and its evidence out; the statistics are internal/stats'.
//
// The verdict, checked in this order at the latest look:
//
//  1. keep_running while an arm has no feedback yet;
//  2. sample_ratio_mismatch when the arms' feedback counts do not fit the
//     configured split (Pearson's chi-square, p < 0.001): the assignment or
//     the feedback is broken, and no comparison may be read;
//  3. control_wins when a guardrail is breached: the treatment's 5xx rate,
//     or its share of requests slower than the latency threshold, is above
//     (1 + margin) times the control's (the exact, always-valid rate-ratio
//     test, one-sided). A treatment worse on errors or latency cannot win,
//     whatever its accuracy;
//  4. treatment_wins (control_wins) when the always-valid mSPRT on accuracy
//     rejects "no difference" and its interval for treatment minus control
//     lies above (below) 0;
//  5. no_difference when the always-valid interval lies inside
//     (-MDE, +MDE), when both arms reached the planned sample without a
//     rejection, or when the maximum duration is over;
//  6. keep_running otherwise, with about how many more feedback events the
//     plan needs.
//
// Looking at every step is safe: the mSPRT and the rate-ratio test are
// always valid, so a verdict read at any look, as often as anyone likes,
// keeps the false-winner rate at alpha (the simulations in sim_test.go
// measure it through this package's Decide, guardrails and SRM included).
// The fixed-horizon z-test is reported as evidence only: it is valid once,
// at the planned size.
package abtest

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ml-platform/platform/internal/stats"
)

// Verdict is the experiment's decision at a look.
type Verdict string

const (
	TreatmentWins       Verdict = "treatment_wins"
	ControlWins         Verdict = "control_wins"
	NoDifference        Verdict = "no_difference"
	KeepRunning         Verdict = "keep_running"
	SampleRatioMismatch Verdict = "sample_ratio_mismatch"
)

// Final reports whether the verdict ends the experiment.
func (v Verdict) Final() bool { return v == TreatmentWins || v == ControlWins || v == NoDifference }

// SRMThreshold is the p-value below which the split is declared broken.
const SRMThreshold = 0.001

// Design is what is fixed before the experiment starts.
type Design struct {
	Alpha float64 // the probability of ever declaring a false winner on accuracy
	Power float64 // the probability of detecting a true lift of MDE by the planned size
	// MDE is the smallest absolute accuracy difference worth detecting
	// (0.03: three points). It sets the mSPRT's mixture and the plan.
	MDE float64
	// Baseline is the control's expected accuracy, for the plan. 0 plans
	// from the pooled accuracy observed so far.
	Baseline float64
	// Split is the configured share of each arm, control then treatment, in
	// any scale (50, 50 or 0.9, 0.1).
	Split [2]float64
	// Guardrails: the treatment may not be worse than the control on these.
	Guardrails Guardrails
}

// Guardrails are the one-sided tests that stop a harmful treatment.
type Guardrails struct {
	// Alpha of each guardrail test; 0 means Design.Alpha.
	Alpha float64
	// ErrorMargin is the relative excess of the 5xx rate tolerated: 0.5
	// breaches when the treatment's rate is above 1.5 times the control's.
	ErrorMargin float64
	// LatencyMargin is the same for the share of requests slower than
	// LatencyThreshold (seconds; for the report only: the counts come in
	// Arm.Slow).
	LatencyMargin    float64
	LatencyThreshold float64
}

// Arm is one arm's cumulative counts at a look.
type Arm struct {
	Feedback int64 // feedback events on predictions the split assigned to this arm
	Correct  int64 // of which the prediction was right
	Requests int64 // inference requests served (0: guardrails not evaluated)
	Errors   int64 // of which answered 5xx
	Slow     int64 // of which slower than the latency threshold
}

// Look is the cumulative counts of both arms at one time.
type Look struct {
	At                 time.Time `json:"at,omitzero"`
	Control, Treatment Arm
}

func (d Design) validate() error {
	switch {
	case !(d.Alpha > 0 && d.Alpha < 0.5):
		return fmt.Errorf("alpha %v must be in (0, 0.5)", d.Alpha)
	case !(d.Power >= 0.5 && d.Power < 1):
		return fmt.Errorf("power %v must be in [0.5, 1)", d.Power)
	case !(d.MDE > 0 && d.MDE < 1):
		return fmt.Errorf("minimum detectable effect %v must be in (0, 1)", d.MDE)
	case d.Baseline != 0 && !(d.Baseline > 0 && d.Baseline+d.MDE < 1):
		return fmt.Errorf("baseline accuracy %v must be in (0, 1 - MDE = %v)", d.Baseline, 1-d.MDE)
	case !(d.Split[0] > 0 && d.Split[1] > 0) || math.IsInf(d.Split[0]+d.Split[1], 0):
		return fmt.Errorf("split %v: both shares must be finite and > 0", d.Split)
	case d.Guardrails.Alpha != 0 && !(d.Guardrails.Alpha > 0 && d.Guardrails.Alpha < 0.5):
		return fmt.Errorf("guardrail alpha %v must be in (0, 0.5)", d.Guardrails.Alpha)
	case !(d.Guardrails.ErrorMargin >= 0) || !(d.Guardrails.LatencyMargin >= 0):
		return fmt.Errorf("guardrail margins %v, %v must be >= 0", d.Guardrails.ErrorMargin, d.Guardrails.LatencyMargin)
	}
	return nil
}

func (a Arm) validate(name string) error {
	switch {
	case a.Feedback < 0 || a.Correct < 0 || a.Correct > a.Feedback:
		return fmt.Errorf("%s: correct %d of %d feedback events", name, a.Correct, a.Feedback)
	case a.Requests < 0 || a.Errors < 0 || a.Slow < 0 || a.Errors > a.Requests || a.Slow > a.Requests:
		return fmt.Errorf("%s: %d errors and %d slow of %d requests", name, a.Errors, a.Slow, a.Requests)
	}
	return nil
}

// Mixture is the mSPRT's mixing distribution for the design: the platform's
// default, chosen for the MDE at the planned power (stats.MixtureForEffect).
func (d Design) Mixture() (stats.Mixture, error) {
	return stats.MixtureForEffect(d.Alpha, d.Power, d.MDE)
}

// Plan is the sample the design needs.
type Plan struct {
	Baseline float64 `json:"baseline"` // the control accuracy planned for
	// Control and Treatment are the feedback events per arm at which the
	// mSPRT, looked at once, detects a lift of MDE with the design's power
	// (looking more often only adds power).
	Control   float64 `json:"control"`
	Treatment float64 `json:"treatment"`
	// FixedHorizon is the same per arm for the fixed-horizon z-test, for
	// comparison (analysed once, at that size).
	FixedHorizonControl float64 `json:"fixed_horizon_control"`
}

// Total is the planned feedback events in both arms.
func (p Plan) Total() float64 { return p.Control + p.Treatment }

// PlanFor is the design's plan with the given baseline accuracy.
func (d Design) PlanFor(baseline float64) (Plan, error) {
	if err := d.validate(); err != nil {
		return Plan{}, err
	}
	if !(baseline > 0 && baseline+d.MDE < 1) {
		return Plan{}, fmt.Errorf("baseline accuracy %v must be in (0, 1 - MDE = %v)", baseline, 1-d.MDE)
	}
	mix, err := d.Mixture()
	if err != nil {
		return Plan{}, err
	}
	ratio := d.Split[1] / d.Split[0]
	pt := baseline + d.MDE
	test := stats.MSPRT{Alpha: d.Alpha, Mixture: mix, Sides: stats.TwoSided}
	n, err := test.SampleSize(stats.SequentialPlan{Effect: d.MDE, VarianceControl: baseline * (1 - baseline),
		VarianceTreatment: pt * (1 - pt), Ratio: ratio, Power: d.Power})
	if err != nil {
		return Plan{}, err
	}
	h, err := stats.CohensH(pt, baseline)
	if err != nil {
		return Plan{}, err
	}
	fixed, err := stats.PowerAnalysis{Alpha: d.Alpha, Ratio: ratio}.SampleSize(h, d.Power)
	if err != nil {
		return Plan{}, err
	}
	return Plan{Baseline: baseline, Control: n.Control, Treatment: n.Treatment, FixedHorizonControl: fixed.Control}, nil
}

// Interval is a confidence interval for treatment minus control; nil ends
// are unbounded.
type Interval struct {
	Low  *float64 `json:"ci_low"`
	High *float64 `json:"ci_high"`
}

func interval(i stats.Interval) Interval {
	bound := func(x float64) *float64 {
		if math.IsInf(x, 0) {
			return nil
		}
		return &x
	}
	return Interval{Low: bound(i.Lower), High: bound(i.Upper)}
}

// ZTest is the fixed-horizon two-proportion z-test at the latest look.
type ZTest struct {
	Diff   float64 `json:"diff"`
	Z      float64 `json:"z"`
	PValue float64 `json:"p_value"`
	Interval
}

// Sequential is the always-valid mSPRT over every look.
type Sequential struct {
	Diff       float64 `json:"diff"`    // the latest look's estimate
	PValue     float64 `json:"p_value"` // always valid: the running minimum
	Interval           // always valid: the running intersection
	Tau2       float64 `json:"tau2"`
	Looks      int     `json:"looks"`       // looks that carried an estimate
	RejectedAt int     `json:"rejected_at"` // the look (1-based, of all looks) of the first rejection; 0: none
}

// SRM is the sample-ratio check on the arms' feedback counts.
type SRM struct {
	ChiSquare float64    `json:"chi_square"`
	PValue    float64    `json:"p_value"`
	Flagged   bool       `json:"flagged"` // p < SRMThreshold
	Observed  [2]int64   `json:"observed"`
	Expected  [2]float64 `json:"expected"`
}

// Guardrail is one guardrail test over every look.
type Guardrail struct {
	Name      string  `json:"name"` // errors or latency
	Evaluated bool    `json:"evaluated"`
	Breached  bool    `json:"breached"`
	Control   float64 `json:"control"`   // the rate at the latest look
	Treatment float64 `json:"treatment"` // the rate at the latest look
	Margin    float64 `json:"margin"`
	PValue    float64 `json:"p_value"` // always valid
	// OverMargin: the treatment's observed rate is above (1 + Margin)
	// times the control's. Not yet a breach (the test has not shown it),
	// but it holds back a win until the guardrail clears or breaches.
	OverMargin bool   `json:"over_margin"`
	Reason     string `json:"reason"`
}

// Result is the verdict at the latest look and its evidence.
type Result struct {
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason"`
	// MoreFeedback is, while the verdict is keep_running, about how many
	// more feedback events (both arms) the plan needs.
	MoreFeedback int64 `json:"more_feedback,omitempty"`
	Looks        int   `json:"looks"`

	Accuracy   [2]float64  `json:"accuracy"` // control, treatment at the latest look
	Feedback   [2]int64    `json:"feedback"`
	ZTest      *ZTest      `json:"z_test"`
	Sequential *Sequential `json:"sequential"`
	SRM        *SRM        `json:"srm"`
	Guardrails []Guardrail `json:"guardrails"`
	Plan       Plan        `json:"plan"`
}

// Options are what Decide knows besides the design and the looks.
type Options struct {
	// MaxDurationReached: the experiment ran its maximum duration; a
	// verdict that would keep running is no_difference instead.
	MaxDurationReached bool
}

// Analyzer decides looks against one design; it computes what the design
// fixes (the mixture, and the plan when the design has a baseline) once.
type Analyzer struct {
	d    Design
	mix  stats.Mixture
	plan *Plan
}

// NewAnalyzer validates the design.
func NewAnalyzer(d Design) (*Analyzer, error) {
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("design: %w", err)
	}
	mix, err := d.Mixture()
	if err != nil {
		return nil, fmt.Errorf("design: %w", err)
	}
	a := &Analyzer{d: d, mix: mix}
	if d.Baseline != 0 {
		p, err := d.PlanFor(d.Baseline)
		if err != nil {
			return nil, fmt.Errorf("plan: %w", err)
		}
		a.plan = &p
	}
	return a, nil
}

// Decide returns the verdict at the last of looks (cumulative counts,
// oldest first) and its evidence.
func Decide(d Design, looks []Look, o Options) (Result, error) {
	a, err := NewAnalyzer(d)
	if err != nil {
		return Result{}, err
	}
	return a.Decide(looks, o)
}

// Decide is the package's Decide for the analyzer's design.
func (a *Analyzer) Decide(looks []Look, o Options) (Result, error) {
	d := a.d
	if len(looks) == 0 {
		return Result{}, errors.New("no looks")
	}
	for i, l := range looks {
		if err := l.Control.validate("control"); err != nil {
			return Result{}, fmt.Errorf("look %d: %w", i+1, err)
		}
		if err := l.Treatment.validate("treatment"); err != nil {
			return Result{}, fmt.Errorf("look %d: %w", i+1, err)
		}
	}
	last := looks[len(looks)-1]
	c, t := last.Control, last.Treatment
	r := Result{Looks: len(looks), Feedback: [2]int64{c.Feedback, t.Feedback}, Guardrails: []Guardrail{}}
	if c.Feedback > 0 {
		r.Accuracy[0] = float64(c.Correct) / float64(c.Feedback)
	}
	if t.Feedback > 0 {
		r.Accuracy[1] = float64(t.Correct) / float64(t.Feedback)
	}

	var plan Plan
	if a.plan != nil {
		plan = *a.plan
	} else {
		// Planned from the pooled accuracy, kept where a lift of MDE fits.
		baseline := 0.5
		if n := c.Feedback + t.Feedback; n > 0 {
			baseline = float64(c.Correct+t.Correct) / float64(n)
		}
		baseline = math.Min(math.Max(baseline, 0.01), 0.99-d.MDE)
		var err error
		if plan, err = d.PlanFor(baseline); err != nil {
			return Result{}, fmt.Errorf("plan: %w", err)
		}
	}
	r.Plan = plan

	if err := r.guardrails(d, looks); err != nil {
		return Result{}, err
	}
	if c.Feedback == 0 || t.Feedback == 0 {
		r.Verdict, r.Reason = KeepRunning, "no feedback yet in "+map[bool]string{true: "the control", false: "the treatment"}[c.Feedback == 0]
		r.MoreFeedback = more(plan, d.Split, c.Feedback, t.Feedback)
		return r, nil
	}
	if err := r.srm(d, c, t); err != nil {
		return Result{}, err
	}
	if err := r.accuracy(d, a.mix, looks); err != nil {
		return Result{}, err
	}
	r.decide(d, plan, o)
	return r, nil
}

// guardrails runs the rate-ratio test on 5xx and on slow requests over the
// looks where both arms served requests.
func (r *Result) guardrails(d Design, looks []Look) error {
	alpha := d.Guardrails.Alpha
	if alpha == 0 {
		alpha = d.Alpha
	}
	for _, g := range []struct {
		name   string
		margin float64
		events func(Arm) int64
		what   string
	}{
		{"errors", d.Guardrails.ErrorMargin, func(a Arm) int64 { return a.Errors }, "5xx rate"},
		{"latency", d.Guardrails.LatencyMargin, func(a Arm) int64 { return a.Slow },
			fmt.Sprintf("share of requests slower than %gs", d.Guardrails.LatencyThreshold)},
	} {
		var arms []stats.Arms
		for _, l := range looks {
			if l.Control.Requests > 0 && l.Treatment.Requests > 0 {
				arms = append(arms, stats.Arms{
					Treatment: stats.Proportion{Successes: g.events(l.Treatment), Trials: l.Treatment.Requests},
					Control:   stats.Proportion{Successes: g.events(l.Control), Trials: l.Control.Requests},
				})
			}
		}
		res := Guardrail{Name: g.name, Margin: g.margin, PValue: 1}
		if len(arms) == 0 {
			res.Reason = "not evaluated: no look with requests in both arms"
			r.Guardrails = append(r.Guardrails, res)
			continue
		}
		test := stats.RateRatioTest{Alpha: alpha, Margin: g.margin, PriorA: 1, PriorB: 1}
		run, err := test.Run(arms)
		if err != nil {
			return fmt.Errorf("guardrail %s: %w", g.name, err)
		}
		lastArms := arms[len(arms)-1]
		res.Evaluated = true
		res.Control = float64(lastArms.Control.Successes) / float64(lastArms.Control.Trials)
		res.Treatment = float64(lastArms.Treatment.Successes) / float64(lastArms.Treatment.Trials)
		res.PValue = run.PValue
		res.Breached = run.Reject
		res.OverMargin = res.Treatment > (1+g.margin)*res.Control
		if res.Breached {
			res.Reason = fmt.Sprintf("the treatment's %s (%.3g%%) is above %.3g times the control's (%.3g%%): always-valid p = %.3g <= %g, first at look %d",
				g.what, 100*res.Treatment, 1+g.margin, 100*res.Control, run.PValue, alpha, run.RejectedAt)
		} else if res.OverMargin {
			res.Reason = fmt.Sprintf("not clear: the treatment's %s (%.3g%%) is above %.3g times the control's (%.3g%%), not yet significantly (p = %.3g)",
				g.what, 100*res.Treatment, 1+g.margin, 100*res.Control, run.PValue)
		} else {
			res.Reason = fmt.Sprintf("holds: the treatment's %s (%.3g%%) is within %.3g times the control's (%.3g%%), p = %.3g",
				g.what, 100*res.Treatment, 1+g.margin, 100*res.Control, run.PValue)
		}
		r.Guardrails = append(r.Guardrails, res)
	}
	return nil
}

func (r *Result) srm(d Design, c, t Arm) error {
	s, err := stats.SampleRatioMismatch([]int64{c.Feedback, t.Feedback}, d.Split[:])
	if err != nil {
		return fmt.Errorf("sample-ratio check: %w", err)
	}
	total := float64(c.Feedback + t.Feedback)
	sum := d.Split[0] + d.Split[1]
	r.SRM = &SRM{ChiSquare: s.ChiSquare, PValue: s.PValue, Flagged: s.PValue < SRMThreshold,
		Observed: [2]int64{c.Feedback, t.Feedback}, Expected: [2]float64{total * d.Split[0] / sum, total * d.Split[1] / sum}}
	return nil
}

// accuracy runs the fixed-horizon z-test at the last look and the mSPRT over
// every look that carries an estimate (both arms with feedback, not all of
// it the same outcome).
func (r *Result) accuracy(d Design, mix stats.Mixture, looks []Look) error {
	last := looks[len(looks)-1]
	tp := stats.Proportion{Successes: last.Treatment.Correct, Trials: last.Treatment.Feedback}
	cp := stats.Proportion{Successes: last.Control.Correct, Trials: last.Control.Feedback}
	if z, err := stats.TwoProportionZTest(tp, cp, d.Alpha); err == nil {
		r.ZTest = &ZTest{Diff: z.Diff, Z: z.Z, PValue: z.PValue, Interval: interval(z.CI)}
	} else if !errors.Is(err, stats.ErrNoVariance) {
		return fmt.Errorf("z-test: %w", err)
	}
	var ests []stats.Estimate
	var lookOf []int // ests[i] is look lookOf[i] (1-based)
	for k, l := range looks {
		if l.Control.Feedback == 0 || l.Treatment.Feedback == 0 {
			continue
		}
		e, err := stats.DiffOfProportions(stats.Proportion{Successes: l.Treatment.Correct, Trials: l.Treatment.Feedback},
			stats.Proportion{Successes: l.Control.Correct, Trials: l.Control.Feedback})
		if errors.Is(err, stats.ErrNoVariance) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mSPRT: %w", err)
		}
		ests = append(ests, e)
		lookOf = append(lookOf, k+1)
	}
	if len(ests) == 0 {
		return nil
	}
	run, err := stats.MSPRT{Alpha: d.Alpha, Mixture: mix, Sides: stats.TwoSided}.Run(ests)
	if err != nil {
		return fmt.Errorf("mSPRT: %w", err)
	}
	r.Sequential = &Sequential{Diff: run.Last.Estimate.Diff, PValue: run.PValue, Interval: interval(run.CI),
		Tau2: mix.Tau2, Looks: run.Looks}
	if run.RejectedAt > 0 {
		r.Sequential.RejectedAt = lookOf[run.RejectedAt-1]
	}
	return nil
}

func (r *Result) decide(d Design, plan Plan, o Options) {
	c, t := r.Feedback[0], r.Feedback[1]
	breached, unclear := "", ""
	for _, g := range r.Guardrails {
		if g.Breached {
			breached += fmt.Sprintf("; guardrail %s breached: %s", g.Name, g.Reason)
		}
		if g.OverMargin {
			unclear += fmt.Sprintf("; guardrail %s %s", g.Name, g.Reason)
		}
	}
	seq := r.Sequential
	switch {
	case r.SRM.Flagged:
		r.Verdict = SampleRatioMismatch
		r.Reason = fmt.Sprintf("feedback counts %d (control) and %d (treatment) do not fit the configured split %g:%g (expected %.0f and %.0f, chi-square p = %.3g < %g): the assignment or the feedback is broken; do not read this experiment",
			c, t, d.Split[0], d.Split[1], r.SRM.Expected[0], r.SRM.Expected[1], r.SRM.PValue, SRMThreshold) + breached
		return
	case breached != "":
		r.Verdict, r.Reason = ControlWins, "a treatment worse on a guardrail cannot win"+breached
		return
	case seq == nil:
		r.Verdict, r.Reason = KeepRunning, "no look has an accuracy estimate yet (every feedback in both arms has the same outcome)"
	case seq.RejectedAt > 0 && seq.Low != nil && *seq.Low > 0 && unclear != "":
		r.Verdict = KeepRunning
		r.Reason = fmt.Sprintf("the treatment leads on accuracy (always-valid interval [%+.4f, %s], p = %.3g), but a treatment worse on a guardrail cannot win: waiting until it clears or breaches",
			*seq.Low, fmtBound(seq.High), seq.PValue) + unclear
	case seq.RejectedAt > 0 && seq.Low != nil && *seq.Low > 0:
		r.Verdict = TreatmentWins
		r.Reason = fmt.Sprintf("treatment accuracy %.4f vs control %.4f: the always-valid interval for the difference [%+.4f, %s] lies above 0 (p = %.3g <= %g, first at look %d); no guardrail breached",
			r.Accuracy[1], r.Accuracy[0], *seq.Low, fmtBound(seq.High), seq.PValue, d.Alpha, seq.RejectedAt)
		return
	case seq.RejectedAt > 0 && seq.High != nil && *seq.High < 0:
		r.Verdict = ControlWins
		r.Reason = fmt.Sprintf("treatment accuracy %.4f vs control %.4f: the always-valid interval for the difference [%s, %+.4f] lies below 0 (p = %.3g <= %g, first at look %d)",
			r.Accuracy[1], r.Accuracy[0], fmtBound(seq.Low), *seq.High, seq.PValue, d.Alpha, seq.RejectedAt)
		return
	case seq.RejectedAt > 0:
		// Rejected, yet the running interval is empty: the looks disagree.
		r.Verdict, r.Reason = KeepRunning, "the looks disagree (the always-valid interval is empty): the effect may have changed during the experiment; look at the history"
	case seq.Low != nil && seq.High != nil && *seq.Low > -d.MDE && *seq.High < d.MDE:
		r.Verdict = NoDifference
		r.Reason = fmt.Sprintf("the always-valid interval for the difference [%+.4f, %+.4f] excludes every effect as large as the MDE (%g)", *seq.Low, *seq.High, d.MDE)
		return
	case float64(c+t) >= math.Floor(plan.Total()):
		// The total, not each arm: the assignment is random, so at the
		// planned total one arm is as likely short of its share as over it
		// (and the sample-ratio check has passed).
		r.Verdict = NoDifference
		r.Reason = fmt.Sprintf("the experiment reached its planned sample (%.0f feedback events) without a difference (always-valid p = %.3g > %g): any true effect is likely smaller than the MDE (%g)",
			plan.Total(), seq.PValue, d.Alpha, d.MDE)
		return
	default:
		r.Verdict = KeepRunning
		r.Reason = fmt.Sprintf("no difference shown yet (always-valid p = %.3g > %g) at %d and %d of the planned %.0f and %.0f feedback events",
			seq.PValue, d.Alpha, c, t, plan.Control, plan.Treatment)
	}
	if o.MaxDurationReached {
		r.Verdict = NoDifference
		r.Reason = "the maximum duration is over: " + r.Reason + "; inconclusive at the MDE, keep the control"
		return
	}
	r.MoreFeedback = more(plan, d.Split, c, t)
}

// more is about how many more feedback events (both arms, at the split) the
// plan needs.
func more(p Plan, split [2]float64, c, t int64) int64 {
	share := split[0] / (split[0] + split[1])
	need := math.Max(p.Control/share, p.Treatment/(1-share))
	return max(0, int64(math.Ceil(need))-(c+t))
}

func fmtBound(x *float64) string {
	if x == nil {
		return "unbounded"
	}
	return fmt.Sprintf("%+.4f", *x)
}
