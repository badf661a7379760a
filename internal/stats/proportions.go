package stats

import (
	"fmt"
	"math"
)

// Proportion is a count of successes (a correct prediction, a 5xx) out of a
// number of trials (feedback events, requests).
type Proportion struct {
	Successes, Trials int64
}

// rate is Successes / Trials (for a validated Proportion).
func (p Proportion) rate() float64 { return float64(p.Successes) / float64(p.Trials) }

func (p Proportion) validate(arm string) error {
	if p.Trials <= 0 {
		return invalid("%s: trials %d must be > 0", arm, p.Trials)
	}
	if p.Successes < 0 || p.Successes > p.Trials {
		return invalid("%s: successes %d must be in [0, trials = %d]", arm, p.Successes, p.Trials)
	}
	return nil
}

// ZTest is the result of TwoProportionZTest. Diff, Z and CI are about
// treatment minus control.
type ZTest struct {
	Diff     float64  // p̂_t - p̂_c
	SEPooled float64  // the standard error under H0 (pooled p̂), which Z divides by
	Z        float64  // Diff / SEPooled
	PValue   float64  // two-sided: 2 Φ(-|Z|)
	SEWald   float64  // the unpooled standard error, for the interval
	CI       Interval // Diff ∓ z_{1-α/2} SEWald: the (1-α) Wald interval
}

// TwoProportionZTest is the fixed-horizon test of H0: p_t = p_c, analysed
// once at a sample size planned in advance (see PowerAnalysis; looking
// repeatedly needs MSPRT instead).
//
// With p̂ = (x_t + x_c) / (n_t + n_c) the pooled proportion,
//
//	Z = (p̂_t - p̂_c) / sqrt(p̂ (1 - p̂) (1/n_t + 1/n_c)),   p = 2 Φ(-|Z|),
//
// and the Wald interval uses the unpooled variance
//
//	(p̂_t - p̂_c) ∓ z_{1-α/2} sqrt(p̂_t(1-p̂_t)/n_t + p̂_c(1-p̂_c)/n_c)
//
// (the pooled two-sample z statistic, equivalent to Pearson's 2x2
// chi-square; the interval is method 1, "simple asymptotic", of Newcombe,
// Statistics in Medicine 17, 1998; the same as statsmodels proportions_ztest
// and confint_proportions_2indep with method="wald", compare="diff"). The Wald interval is poor for tiny counts;
// the z-test wants n p̂ and n (1 - p̂) of at least ~5 in each arm.
//
// It returns ErrNoVariance when every trial in both arms has the same outcome.
func TwoProportionZTest(treatment, control Proportion, alpha float64) (ZTest, error) {
	if err := treatment.validate("treatment"); err != nil {
		return ZTest{}, err
	}
	if err := control.validate("control"); err != nil {
		return ZTest{}, err
	}
	if err := checkAlpha(alpha); err != nil {
		return ZTest{}, err
	}
	pt, pc := treatment.rate(), control.rate()
	nt, nc := float64(treatment.Trials), float64(control.Trials)
	pooled := float64(treatment.Successes+control.Successes) / (nt + nc)
	sePooled := math.Sqrt(pooled * (1 - pooled) * (1/nt + 1/nc))
	if !(sePooled > 0) {
		return ZTest{}, noVarianceProportions(treatment, control)
	}
	r := ZTest{
		Diff:     pt - pc,
		SEPooled: sePooled,
		SEWald:   math.Sqrt(pt*(1-pt)/nt + pc*(1-pc)/nc),
	}
	r.Z = r.Diff / sePooled
	r.PValue = 2 * normalCDF(-math.Abs(r.Z))
	half := normalUpperQuantile(alpha/2) * r.SEWald
	r.CI = Interval{Lower: r.Diff - half, Upper: r.Diff + half}
	return r, checkResult("two-proportion z-test", r.Z, r.PValue, r.CI.Lower, r.CI.Upper)
}

func noVarianceProportions(treatment, control Proportion) error {
	return fmt.Errorf("%w: every trial in both arms has the same outcome (treatment %d/%d, control %d/%d)",
		ErrNoVariance, treatment.Successes, treatment.Trials, control.Successes, control.Trials)
}
