package stats

import "math"

// PowerAnalysis plans a fixed-horizon two-sided test on a standardised effect
// size: Cohen's h for two proportions (CohensH), Cohen's d = (μ_t - μ_c) / σ for
// two means (Cohen, Statistical Power Analysis for the Behavioral Sciences,
// 2nd ed., 1988, chapters 2 and 6). It is the normal-approximation power of
// statsmodels' NormalIndPower (with ProportionEffectSize for h):
//
//	power(e, n_c) = Φ(|e| √n_eff - z_{1-α/2}) + Φ(-|e| √n_eff - z_{1-α/2}),
//	n_eff = 1 / (1/n_c + 1/n_t) = n_c k / (1 + k),   n_t = k n_c,
//
// with both rejection tails counted. SampleSize and MinimumDetectableEffect
// invert it exactly (bisection), so they agree with statsmodels' power to
// 1e-9 where NormalIndPower.solve_power itself stops at ~1e-7.
//
// The arcsine transform makes h's variance 1/n whatever the proportion, so a
// plan from h is close to, but not the same as, one from the Wald variance
// p(1-p)/n that TwoProportionZTest's interval and MSPRT use.
type PowerAnalysis struct {
	Alpha float64 // two-sided significance level, in (0, 1)
	Ratio float64 // allocation n_treatment / n_control, > 0 (1 for an even split; 1/9 for a 10% canary)
}

func (a PowerAnalysis) validate() error {
	if err := checkAlpha(a.Alpha); err != nil {
		return err
	}
	return checkPositive("allocation ratio", a.Ratio)
}

func (a PowerAnalysis) effectiveN(nControl float64) float64 {
	return nControl * a.Ratio / (1 + a.Ratio)
}

// powerAt is the power as a function of x = |e| √n_eff, increasing in x
// from α at x = 0 towards 1.
func (a PowerAnalysis) powerAt(x float64) float64 {
	crit := normalUpperQuantile(a.Alpha / 2)
	return normalCDF(x-crit) + normalCDF(-x-crit)
}

// xForPower is the x = |e| √n_eff at which the test has the given power.
func (a PowerAnalysis) xForPower(power float64) (float64, error) {
	if !(power > a.Alpha && power < 1) {
		return 0, invalid("power %v must be in (alpha = %v, 1): a test has power alpha with no data", power, a.Alpha)
	}
	hi := normalUpperQuantile(a.Alpha/2) + normalQuantile(power) + 1 // powerAt(hi) > Φ(z_power + 1) > power
	return solveIncreasing(a.powerAt, power, 0, hi), nil
}

// Power is the probability that the test rejects when the true standardised
// effect is effect and n_c = nControl (n_t = Ratio · nControl).
func (a PowerAnalysis) Power(effect, nControl float64) (float64, error) {
	if err := a.validate(); err != nil {
		return 0, err
	}
	if err := checkFinite("effect size", effect); err != nil {
		return 0, err
	}
	if err := checkPositive("control sample size", nControl); err != nil {
		return 0, err
	}
	p := a.powerAt(math.Abs(effect) * math.Sqrt(a.effectiveN(nControl)))
	return p, checkResult("power", p)
}

// SampleSize is the n per arm at which the test detects the standardised
// effect with the given power, in (Alpha, 1):
// n_eff = (x / |e|)² where power(x) = power, n_c = n_eff (1 + k) / k.
func (a PowerAnalysis) SampleSize(effect, power float64) (SampleSize, error) {
	if err := a.validate(); err != nil {
		return SampleSize{}, err
	}
	if err := checkFinite("effect size", effect); err != nil {
		return SampleSize{}, err
	}
	if effect == 0 {
		return SampleSize{}, invalid("effect size is 0: no sample size detects no effect")
	}
	x, err := a.xForPower(power)
	if err != nil {
		return SampleSize{}, err
	}
	nEff := (x / effect) * (x / effect)
	nc := nEff * (1 + a.Ratio) / a.Ratio
	s := SampleSize{Control: nc, Treatment: a.Ratio * nc}
	if math.IsInf(nc, 0) {
		return SampleSize{}, invalid("effect size %v is too small: the sample size overflows", effect)
	}
	return s, checkResult("sample size", s.Control, s.Treatment)
}

// MinimumDetectableEffect is the smallest |standardised effect| that the
// test detects with the given power at n_c = nControl: x / √n_eff. For
// proportions, ProportionForCohensH turns it back into a treatment rate.
func (a PowerAnalysis) MinimumDetectableEffect(nControl, power float64) (float64, error) {
	if err := a.validate(); err != nil {
		return 0, err
	}
	if err := checkPositive("control sample size", nControl); err != nil {
		return 0, err
	}
	x, err := a.xForPower(power)
	if err != nil {
		return 0, err
	}
	e := x / math.Sqrt(a.effectiveN(nControl))
	return e, checkResult("minimum detectable effect", e)
}

// CohensH is the effect size of two proportions on the arcsine scale,
// h = 2 asin √p_t - 2 asin √p_c (Cohen 1988, chapter 6; statsmodels
// proportion_effectsize(p_t, p_c)).
func CohensH(pTreatment, pControl float64) (float64, error) {
	if err := checkProbability("treatment proportion", pTreatment); err != nil {
		return 0, err
	}
	if err := checkProbability("control proportion", pControl); err != nil {
		return 0, err
	}
	return 2*math.Asin(math.Sqrt(pTreatment)) - 2*math.Asin(math.Sqrt(pControl)), nil
}

// ProportionForCohensH inverts CohensH: the treatment proportion
// sin²(asin √p_c + h/2) that is h away from pControl. It is an error when no
// proportion is that far (the angle leaves [0, π/2]).
func ProportionForCohensH(pControl, h float64) (float64, error) {
	if err := checkProbability("control proportion", pControl); err != nil {
		return 0, err
	}
	if err := checkFinite("Cohen's h", h); err != nil {
		return 0, err
	}
	angle := math.Asin(math.Sqrt(pControl)) + h/2
	if angle < 0 || angle > math.Pi/2 {
		return 0, invalid("no proportion is Cohen's h = %v away from %v (h must be in [%v, %v])",
			h, pControl, -2*math.Asin(math.Sqrt(pControl)), math.Pi-2*math.Asin(math.Sqrt(pControl)))
	}
	s := math.Sin(angle)
	return s * s, nil
}

func checkProbability(name string, p float64) error {
	if !(p >= 0 && p <= 1) {
		return invalid("%s %v is not in [0, 1]", name, p)
	}
	return nil
}
