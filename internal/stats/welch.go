package stats

import (
	"fmt"
	"math"
)

// Summary is a sample described by its size, mean and unbiased variance
// (divisor n - 1), e.g. per-request scores or latencies of one arm.
type Summary struct {
	N        int64
	Mean     float64
	Variance float64
}

func (s Summary) validate(arm string) error {
	if s.N < 2 {
		return invalid("%s: n %d must be >= 2 (a variance needs two observations)", arm, s.N)
	}
	if err := checkFinite(arm+": mean", s.Mean); err != nil {
		return err
	}
	if math.IsNaN(s.Variance) || math.IsInf(s.Variance, 0) || s.Variance < 0 {
		return invalid("%s: variance %v must be a finite number >= 0", arm, s.Variance)
	}
	return nil
}

// TTest is the result of WelchTTest; Diff, T and CI are about treatment minus
// control.
type TTest struct {
	Diff   float64  // mean_t - mean_c
	SE     float64  // sqrt(v_t/n_t + v_c/n_c)
	T      float64  // Diff / SE
	DF     float64  // Welch-Satterthwaite degrees of freedom
	PValue float64  // two-sided: 2 P(T_df > |T|)
	CI     Interval // Diff ∓ t_{df, 1-α/2} SE
}

// WelchTTest is Welch's unequal-variance t-test of H0: mean_t = mean_c from
// summary statistics (Welch, Biometrika 34, 1947):
//
//	T = (m_t - m_c) / SE,   SE² = v_t/n_t + v_c/n_c,
//	df = SE⁴ / ((v_t/n_t)²/(n_t - 1) + (v_c/n_c)²/(n_c - 1))   (Satterthwaite 1946),
//	p = 2 P(T_df > |T|),   CI = (m_t - m_c) ∓ t_{df, 1-α/2} SE.
//
// It matches scipy.stats.ttest_ind_from_stats(equal_var=False). Like the
// z-test it is fixed-horizon: analyse once.
//
// It returns ErrNoVariance when both variances are zero.
func WelchTTest(treatment, control Summary, alpha float64) (TTest, error) {
	if err := treatment.validate("treatment"); err != nil {
		return TTest{}, err
	}
	if err := control.validate("control"); err != nil {
		return TTest{}, err
	}
	if err := checkAlpha(alpha); err != nil {
		return TTest{}, err
	}
	vt := treatment.Variance / float64(treatment.N)
	vc := control.Variance / float64(control.N)
	se2 := vt + vc
	if !(se2 > 0) {
		return TTest{}, fmt.Errorf("%w: both arms have variance 0", ErrNoVariance)
	}
	r := TTest{Diff: treatment.Mean - control.Mean, SE: math.Sqrt(se2)}
	r.T = r.Diff / r.SE
	// df in terms of each arm's share of SE², which cannot under- or overflow
	wt, wc := vt/se2, vc/se2
	r.DF = 1 / (wt*wt/float64(treatment.N-1) + wc*wc/float64(control.N-1))
	r.PValue = tTwoSidedP(r.T, r.DF)
	half := tUpperQuantile(alpha, r.DF) * r.SE
	r.CI = Interval{Lower: r.Diff - half, Upper: r.Diff + half}
	return r, checkResult("Welch t-test", r.T, r.DF, r.PValue, r.CI.Lower, r.CI.Upper)
}
