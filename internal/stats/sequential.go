package stats

import (
	"fmt"
	"math"
)

// Estimate is an asymptotically normal estimate of a difference θ
// (treatment minus control) and the variance of that estimate. MSPRT needs
// nothing else, so unequal arm sizes, proportions and means all fit.
type Estimate struct {
	Diff     float64 // θ̂
	Variance float64 // V = Var(θ̂), e.g. p_t q_t / n_t + p_c q_c / n_c
}

func (e Estimate) validate() error {
	if err := checkFinite("estimate", e.Diff); err != nil {
		return err
	}
	if !(e.Variance > 0) || math.IsInf(e.Variance, 0) {
		return fmt.Errorf("%w: the variance of the estimate is %v; it must be a finite number > 0", ErrInvalidInput, e.Variance)
	}
	return nil
}

// DiffOfProportions is p̂_t - p̂_c with its plug-in variance
// V = p̂_t (1 - p̂_t) / n_t + p̂_c (1 - p̂_c) / n_c (the Wald variance; as
// gbstats' ProportionStatistic with an absolute difference). It returns
// ErrNoVariance when every trial in both arms has the same outcome.
func DiffOfProportions(treatment, control Proportion) (Estimate, error) {
	if err := treatment.validate("treatment"); err != nil {
		return Estimate{}, err
	}
	if err := control.validate("control"); err != nil {
		return Estimate{}, err
	}
	pt, pc := treatment.rate(), control.rate()
	v := pt*(1-pt)/float64(treatment.Trials) + pc*(1-pc)/float64(control.Trials)
	if !(v > 0) {
		return Estimate{}, noVarianceProportions(treatment, control)
	}
	return Estimate{Diff: pt - pc, Variance: v}, nil
}

// DiffOfMeans is mean_t - mean_c with variance v_t / n_t + v_c / n_c. It
// returns ErrNoVariance when both variances are zero.
func DiffOfMeans(treatment, control Summary) (Estimate, error) {
	if err := treatment.validate("treatment"); err != nil {
		return Estimate{}, err
	}
	if err := control.validate("control"); err != nil {
		return Estimate{}, err
	}
	v := treatment.Variance/float64(treatment.N) + control.Variance/float64(control.N)
	if !(v > 0) {
		return Estimate{}, fmt.Errorf("%w: both arms have variance 0", ErrNoVariance)
	}
	return Estimate{Diff: treatment.Mean - control.Mean, Variance: v}, nil
}

// Mixture is the mSPRT's mixing distribution over the effect, N(0, Tau2) for
// the two-sided test and its positive (negative) half for Greater (Less).
// Tau2 is in the units of the squared difference. There is no zero-value
// default: choose it before the experiment with MixtureForEffect (the
// platform's default, with the minimum effect worth detecting and power 0.8)
// or MixtureTightestAt.
type Mixture struct {
	Tau2 float64
}

// optimalMixingRatio is r*(α) = -2 ln α + ln(1 - 2 ln α): the ratio τ²/V at
// which the normal-mixture boundary is (nearly) narrowest (Waudby-Smith et
// al., "Time-uniform central limit theory and asymptotic confidence
// sequences", Ann. Statist. 2024, arXiv:2103.06476; the ρ choice that gbstats
// 0.8.0 cites as eq. 161 of v7: ρ² = r*/N*). The exact minimiser solves
// r = -2 ln α + ln(1 + r); r* is its first fixed-point step.
func optimalMixingRatio(alpha float64) float64 {
	l := -2 * math.Log(alpha)
	return l + math.Log(1+l)
}

// MixtureTightestAt is the mixture whose confidence interval is narrowest
// when the estimate's variance is V*: τ² = r*(α) V*.
//
// GrowthBook's sequential_tuning_parameter N* (gbstats 0.8.0,
// SequentialTwoSidedTTest) is this mixture with V* = σ²/N*, where
// σ² = (n_a + n_b) V is the per-observation variance (ρ² σ² = τ² with
// ρ² = r*/N*; see the package tests, which match gbstats to 1e-9). gbstats
// re-estimates σ² at every look; fixing τ once, before the experiment, is
// what the mSPRT's guarantee assumes.
func MixtureTightestAt(alpha, variance float64) (Mixture, error) {
	if err := checkAlpha(alpha); err != nil {
		return Mixture{}, err
	}
	if err := checkPositive("variance", variance); err != nil {
		return Mixture{}, err
	}
	return Mixture{Tau2: optimalMixingRatio(alpha) * variance}, nil
}

// MixtureForEffect is the mixture that, for a true difference of the given
// size, reaches the given power at the smallest sample size (for the
// two-sided test, one look, normal approximation). Johari et al. advise
// choosing τ from the effects one expects; this makes that precise. In
// z-units the boundary at τ²/V = r is
//
//	c(r) = sqrt((1 + r)/r · (-2 ln α + ln(1 + r))),
//
// which is smallest near r = r*(α); the test reaches the power when
// |δ|/√V = c(r*) + z_power, so the best τ² is r*(α) δ² / (c(r*) + z_power)²
// (τ ≈ 0.73 |δ| at α = 0.05, power 0.8). It does not depend on the
// variance, so it can be fixed before any data. The one-sided tests use the
// same τ (their boundary is lower, so they are at least as powerful).
func MixtureForEffect(alpha, power, effect float64) (Mixture, error) {
	if err := checkAlpha(alpha); err != nil {
		return Mixture{}, err
	}
	if !(power >= 0.5 && power < 1) {
		return Mixture{}, invalid("power %v must be in [0.5, 1)", power)
	}
	if err := checkFinite("effect", effect); err != nil {
		return Mixture{}, err
	}
	if effect == 0 {
		return Mixture{}, invalid("effect is 0: choose the smallest difference worth detecting")
	}
	r := optimalMixingRatio(alpha)
	c := math.Sqrt((1 + r) / r * (-2*math.Log(alpha) + math.Log1p(r)))
	k := c + normalQuantile(power)
	return Mixture{Tau2: r * effect * effect / (k * k)}, nil
}

// Sides is the alternative an MSPRT looks for.
type Sides int

const (
	// TwoSided: θ ≠ Null (the A/B analyser's "is there a difference").
	TwoSided Sides = iota
	// Greater: θ > Null, e.g. the canary's 5xx rate exceeds stable's by
	// more than a margin (Null = margin).
	Greater
	// Less: θ < Null, e.g. a guardrail "treatment accuracy is not lower
	// than control's by more than a margin" (Null = -margin).
	Less
)

func (s Sides) String() string {
	switch s {
	case TwoSided:
		return "two-sided"
	case Greater:
		return "greater"
	case Less:
		return "less"
	}
	return fmt.Sprintf("Sides(%d)", int(s))
}

// MSPRT is the mixture sequential probability ratio test of H0: θ = Null
// (for Greater, θ <= Null; for Less, θ >= Null) on an asymptotically normal
// estimate θ̂ ~ N(θ, V) (Johari, Koomen, Pekelis, Walsh, "Peeking at A/B
// tests", KDD 2017, and "Always valid inference: continuous monitoring of
// A/B tests", Operations Research 70(3), 2022: their mSPRT for the
// difference of two streams with a normal mixture; after Robbins, Ann.
// Math. Statist. 41, 1970).
// Mixing the likelihood ratio of θ against Null over θ - Null ~ N(0, τ²)
// gives, with d = θ̂ - Null,
//
//	Λ = sqrt(V / (V + τ²)) · exp(τ² d² / (2 V (V + τ²))).
//
// Λ is a martingale under H0, so by Ville's inequality P(Λ ever >= 1/α) <= α:
// rejecting as soon as Λ >= 1/α keeps the false-positive rate at α however
// often one looks (for the normal approximation with V plugged in from the
// data: asymptotically, as in Waudby-Smith et al.'s asymptotic confidence
// sequences). The always-valid p-value is the running minimum of
// min(1, 1/Λ) over the looks, and the always-valid confidence interval the
// running intersection of {θ : Λ(θ) < 1/α}, which has the closed form
//
//	θ̂ ∓ sqrt(2 V (V + τ²)/τ² · ln(sqrt((V + τ²)/V) / α)).
//
// With τ² = ρ² σ² this interval is Waudby-Smith et al.'s normal-mixture
// asymptotic confidence sequence (eq. 9 of arXiv:2103.06476v7, as gbstats
// cites it), the one GrowthBook's gbstats 0.8.0 reports (see
// MixtureTightestAt), and 1/Λ is gbstats' sequential p-value (its eq. 155).
//
// The one-sided variants mix over the half-normal δ = θ - Null > 0 only
// (density 2 φ(δ/τ)/τ): with x = d τ / sqrt(V (V + τ²)),
//
//	Λ₊ = 2 sqrt(V / (V + τ²)) · exp(x²/2) · Φ(x),
//
// the one-sided normal mixture of Howard, Ramdas, McAuliffe and Sekhon
// ("Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann.
// Statist. 49(2), 2021). It is a supermartingale under every θ <= Null, so
// the composite null keeps the guarantee; its interval [θ̂ - w₊, +∞) has
// Λ₊(w₊) = 1/α, found by bisection (there is no closed form). Less is
// Greater on -θ.
type MSPRT struct {
	Alpha   float64 // in (0, 1): the probability of ever rejecting a true H0
	Mixture Mixture
	Null    float64 // θ₀: 0 for "no difference", or a margin
	Sides   Sides
}

func (t MSPRT) validate() error {
	if err := checkAlpha(t.Alpha); err != nil {
		return err
	}
	if !(t.Mixture.Tau2 > 0) || math.IsInf(t.Mixture.Tau2, 0) {
		return invalid("mixture variance tau² %v must be a finite number > 0 (choose it with MixtureForEffect)", t.Mixture.Tau2)
	}
	if err := checkFinite("null", t.Null); err != nil {
		return err
	}
	if t.Sides != TwoSided && t.Sides != Greater && t.Sides != Less {
		return invalid("sides %v is not TwoSided, Greater or Less", t.Sides)
	}
	return nil
}

// LookResult is the test at one look, on its own.
type LookResult struct {
	Estimate  Estimate
	LogLambda float64  // ln Λ (Λ itself may overflow)
	Lambda    float64  // the mixture likelihood ratio; +Inf when ln Λ > ~709
	PValue    float64  // min(1, 1/Λ): this look's p-value, valid on its own
	CI        Interval // {θ : Λ(θ) < 1/α} at this look
	Reject    bool     // Λ >= 1/α
}

// shape holds what Λ depends on besides d: r = τ²/V and s = sqrt(r/(1+r)), so
// that x = s d/√V.
type shape struct {
	v, r, s float64
}

func (t MSPRT) shapeOf(variance float64) shape {
	r := t.Mixture.Tau2 / variance
	return shape{v: variance, r: r, s: math.Sqrt(r / (1 + r))}
}

// logLambda is ln Λ (or ln Λ₊) as a function of x = s d/√V, with d already
// oriented so that the alternative is d > 0 for the one-sided tests.
func (t MSPRT) logLambda(sh shape, x float64) float64 {
	if t.Sides == TwoSided {
		return -0.5*math.Log1p(sh.r) + x*x/2
	}
	return math.Ln2 - 0.5*math.Log1p(sh.r) + logNormalCDFPlusHalfSquare(x)
}

// boundaryX is the x at which ln Λ = ln(1/α).
func (t MSPRT) boundaryX(sh shape) float64 {
	target := -math.Log(t.Alpha)
	two := math.Sqrt(2*target + math.Log1p(sh.r))
	if t.Sides == TwoSided {
		return two
	}
	// ln Λ₊ is increasing in x; at 0 it is -ln(1+r)/2 < target and at the
	// two-sided root it is target + ln(2 Φ(two)) > target.
	return solveIncreasing(func(x float64) float64 { return t.logLambda(sh, x) }, target, 0, two)
}

// halfWidth is the distance w from θ̂ to the edge of the confidence set.
func (t MSPRT) halfWidth(sh shape) float64 {
	return t.boundaryX(sh) * math.Sqrt(sh.v) / sh.s
}

// Look evaluates the test at one look.
func (t MSPRT) Look(e Estimate) (LookResult, error) {
	if err := t.validate(); err != nil {
		return LookResult{}, err
	}
	if err := e.validate(); err != nil {
		return LookResult{}, err
	}
	sh := t.shapeOf(e.Variance)
	d := e.Diff - t.Null
	if t.Sides == Less {
		d = -d
	}
	ll := t.logLambda(sh, sh.s*d/math.Sqrt(sh.v))
	w := t.halfWidth(sh)
	ci := Interval{Lower: e.Diff - w, Upper: e.Diff + w}
	switch t.Sides {
	case Greater:
		ci.Upper = math.Inf(1)
	case Less:
		ci.Lower = math.Inf(-1)
	}
	r := LookResult{
		Estimate:  e,
		LogLambda: ll,
		Lambda:    math.Exp(ll),
		PValue:    math.Min(1, math.Exp(-ll)),
		CI:        ci,
		Reject:    ll >= -math.Log(t.Alpha),
	}
	return r, checkResult("mSPRT", r.LogLambda, r.PValue, r.CI.Lower, r.CI.Upper)
}

// RunResult is the test over every look so far.
type RunResult struct {
	Looks int
	Last  LookResult // the latest look on its own
	// PValue is the always-valid p-value: the minimum over the looks of
	// min(1, 1/Λ).
	PValue float64
	// CI is the always-valid confidence interval: the intersection of the
	// looks' intervals, consistent with PValue (Null is outside CI exactly
	// when PValue <= Alpha). Under the model it contains θ at every look
	// with probability >= 1 - α; an empty CI (Lower > Upper, see
	// Interval.Empty) means the looks disagree, which the model allows with
	// probability <= α and which more often means the effect changed over
	// the experiment.
	CI Interval
	// Reject is PValue <= Alpha: H0 rejected at some look.
	Reject bool
	// RejectedAt is the 1-based look at which H0 was first rejected, 0 if
	// never.
	RejectedAt int
}

// Run evaluates the test over the cumulative estimates of every look so far,
// oldest first (each look's estimate is computed from all data up to it).
// Passing the history keeps the function pure; a caller persists only the
// cumulative counts of its looks.
func (t MSPRT) Run(looks []Estimate) (RunResult, error) {
	if err := t.validate(); err != nil {
		return RunResult{}, err
	}
	if len(looks) == 0 {
		return RunResult{}, invalid("no looks")
	}
	res := RunResult{PValue: 1, CI: Interval{Lower: math.Inf(-1), Upper: math.Inf(1)}}
	for i, e := range looks {
		l, err := t.Look(e)
		if err != nil {
			return RunResult{}, fmt.Errorf("look %d: %w", i+1, err)
		}
		res.Looks = i + 1
		res.Last = l
		res.PValue = math.Min(res.PValue, l.PValue)
		res.CI.Lower = math.Max(res.CI.Lower, l.CI.Lower)
		res.CI.Upper = math.Min(res.CI.Upper, l.CI.Upper)
		if l.Reject && res.RejectedAt == 0 {
			res.RejectedAt = i + 1
		}
	}
	res.Reject = res.RejectedAt > 0
	return res, nil
}

// SequentialPlan describes the experiment whose sample size MSPRT.SampleSize
// finds.
type SequentialPlan struct {
	// Effect is the true difference θ (treatment minus control) to detect;
	// the test's distance to cover is Effect - Null.
	Effect float64
	// VarianceControl and VarianceTreatment are the per-observation
	// variances under that effect: p (1 - p) for proportions.
	VarianceControl, VarianceTreatment float64
	// Ratio is n_treatment / n_control, > 0.
	Ratio float64
	// Power is the probability of rejecting, in [0.5, 1).
	Power float64
}

// SampleSize is the n per arm at which the test, looked at once, rejects
// with probability plan.Power when θ = plan.Effect (normal approximation):
// with V(n_c) = (σ²_c + σ²_t / k) / n_c and boundary half-width w(V),
//
//	two-sided:  Φ((δ - w)/√V) + Φ((-δ - w)/√V) = power,
//	Greater:    Φ((δ - w₊)/√V) = power   (Less: δ → -δ),
//
// δ = Effect - Null. Looking earlier as well only adds chances to reject, so
// an experiment run to this size with any number of looks has at least this
// power; "keep running, about N more" is this minus the current size. The
// rejection probability is increasing in n wherever it is >= 1/2, so the
// root is unique for Power >= 0.5.
func (t MSPRT) SampleSize(plan SequentialPlan) (SampleSize, error) {
	if err := t.validate(); err != nil {
		return SampleSize{}, err
	}
	if err := checkFinite("effect", plan.Effect); err != nil {
		return SampleSize{}, err
	}
	if err := checkPositive("control variance", plan.VarianceControl); err != nil {
		return SampleSize{}, err
	}
	if err := checkPositive("treatment variance", plan.VarianceTreatment); err != nil {
		return SampleSize{}, err
	}
	if err := checkPositive("allocation ratio", plan.Ratio); err != nil {
		return SampleSize{}, err
	}
	if !(plan.Power >= 0.5 && plan.Power < 1) {
		return SampleSize{}, invalid("power %v must be in [0.5, 1)", plan.Power)
	}
	delta := plan.Effect - t.Null
	if t.Sides == Less {
		delta = -delta
	}
	if delta == 0 || (t.Sides != TwoSided && delta < 0) {
		return SampleSize{}, invalid("effect %v is not on the alternative side (%v) of null %v", plan.Effect, t.Sides, t.Null)
	}
	delta = math.Abs(delta)                                          // the two-sided test is symmetric
	perN := plan.VarianceControl + plan.VarianceTreatment/plan.Ratio // V = perN / n_c
	reject := func(nc float64) float64 {
		sh := t.shapeOf(perN / nc)
		sd := math.Sqrt(sh.v)
		zw := t.halfWidth(sh) / sd // the boundary in z-units
		mu := delta / sd
		if t.Sides == TwoSided {
			return normalCDF(mu-zw) + normalCDF(-mu-zw)
		}
		return normalCDF(mu - zw)
	}
	hi := 1.0
	for reject(hi) < plan.Power {
		hi *= 2
		if hi > 1e300 {
			return SampleSize{}, invalid("effect %v is too small against the variances to plan for", plan.Effect)
		}
	}
	nc := solveIncreasing(reject, plan.Power, 0, hi)
	s := SampleSize{Control: nc, Treatment: plan.Ratio * nc}
	return s, checkResult("sequential sample size", s.Control, s.Treatment)
}
