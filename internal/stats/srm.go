package stats

import "gonum.org/v1/gonum/stat/distuv"

// SRM is the result of SampleRatioMismatch.
type SRM struct {
	ChiSquare float64 // Pearson's Σ (O - E)² / E
	DF        int     // arms - 1
	PValue    float64 // P(χ²_DF >= ChiSquare)
}

// SampleRatioMismatch tests whether the observed arm counts (users or
// requests per arm) fit the configured split, given as weights in any scale
// (0.9 and 0.1, or 9 and 1): Pearson's chi-square goodness of fit,
// E_i = w_i / Σw · Σ O, χ² = Σ (O_i - E_i)² / E_i on arms - 1 degrees of
// freedom (Pearson 1900; Fabijan et al., "Diagnosing sample ratio mismatch
// in online controlled experiments", KDD 2019, for why an experiment with a
// mismatch must not be read). It matches scipy.stats.chisquare(O, f_exp=E).
// A mismatch is usually declared at a strict level, such as p < 0.001,
// since the check runs on every experiment and every look.
func SampleRatioMismatch(observed []int64, weights []float64) (SRM, error) {
	if len(observed) < 2 {
		return SRM{}, invalid("sample-ratio check needs at least two arms, got %d", len(observed))
	}
	if len(weights) != len(observed) {
		return SRM{}, invalid("%d observed counts but %d weights", len(observed), len(weights))
	}
	var total, wsum float64
	for i, o := range observed {
		if o < 0 {
			return SRM{}, invalid("arm %d: observed count %d is negative", i, o)
		}
		if err := checkPositive("weight", weights[i]); err != nil {
			return SRM{}, invalid("arm %d: weight %v must be a finite number > 0", i, weights[i])
		}
		total += float64(o)
		wsum += weights[i]
	}
	if total == 0 {
		return SRM{}, invalid("no observations in any arm")
	}
	var chi2 float64
	for i, o := range observed {
		e := weights[i] / wsum * total
		d := float64(o) - e
		chi2 += d * d / e
	}
	df := len(observed) - 1
	r := SRM{ChiSquare: chi2, DF: df, PValue: distuv.ChiSquared{K: float64(df)}.Survival(chi2)}
	return r, checkResult("sample-ratio mismatch", r.ChiSquare, r.PValue)
}
