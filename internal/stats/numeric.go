package stats

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// ErrInvalidInput is wrapped by every error about the caller's arguments:
// counts out of range, alpha outside (0, 1), NaN or infinite values, empty or
// mismatched histograms.
var ErrInvalidInput = errors.New("invalid input")

// ErrNoVariance is wrapped when the data are valid but leave the test without
// a variance to scale by: every outcome identical in both arms (no errors at
// all in a canary and its stable), or every latency in one bucket. There is
// no evidence either way; a caller usually waits for more data.
var ErrNoVariance = errors.New("no variance in the data")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

func checkAlpha(alpha float64) error {
	if !(alpha > 0 && alpha < 1) {
		return invalid("alpha %v is not in (0, 1)", alpha)
	}
	return nil
}

func checkFinite(name string, x float64) error {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return invalid("%s is %v, not a finite number", name, x)
	}
	return nil
}

func checkPositive(name string, x float64) error {
	if !(x > 0) || math.IsInf(x, 0) {
		return invalid("%s %v is not a finite number > 0", name, x)
	}
	return nil
}

// checkResult is the last line of defence behind "never returns NaN": a
// computed value that is NaN means an input range slipped past validation,
// and is reported rather than returned.
func checkResult(what string, xs ...float64) error {
	for _, x := range xs {
		if math.IsNaN(x) {
			return fmt.Errorf("%s: the computation gave NaN for these inputs (please report)", what)
		}
	}
	return nil
}

// Interval is a confidence interval [Lower, Upper]. A one-sided interval has
// an infinite end. Lower > Upper means the interval is empty (see RunResult).
type Interval struct {
	Lower, Upper float64
}

// Empty reports whether no value lies in the interval.
func (i Interval) Empty() bool { return i.Lower > i.Upper }

// Contains reports whether x lies in the interval.
func (i Interval) Contains(x float64) bool { return i.Lower <= x && x <= i.Upper }

// normalCDF is Φ(x). Upper tails are taken as normalCDF(-x): gonum's
// Normal.Survival is 1 - erf, which loses the tail, while CDF uses erfc.
func normalCDF(x float64) float64 { return distuv.UnitNormal.CDF(x) }

// normalUpperQuantile is z with Φ(-z) = p, i.e. scipy's norm.isf(p), taken from
// the lower tail for accuracy at small p. p must be in (0, 1).
func normalUpperQuantile(p float64) float64 { return -distuv.UnitNormal.Quantile(p) }

// normalQuantile is Φ⁻¹(p); p must be in (0, 1).
func normalQuantile(p float64) float64 { return distuv.UnitNormal.Quantile(p) }

// Student's t. gonum's StudentsT (v0.17.0) is accurate for moderate df but
// not where a Welch test on per-request data lives: measured against scipy,
// its two-sided p-value is off by 4.4e-9 at df = 1e5 and 8.8e-9 at df = 1e6
// (t near 0: the argument df/(df+t²) of the incomplete beta rounds towards
// 1), and its Quantile, through InvRegIncBeta, is off by 4.5e-7 (relative)
// at df = 1e3 for alpha = 1e-9 and returns 44.7 instead of 6.11 at df = 3e4.
// (On a grid of df from 1 to 1e6, t to 40 and alpha to 1e-9, what follows
// is within 7e-13 of scipy, absolute for p and relative for quantiles.) So:
//
//   - df <= tLargeDF: the p-value is gonum's regularised incomplete beta
//     (mathext.RegIncBeta, the function StudentsT.CDF uses) taken in
//     whichever of the two equivalent forms is accurate,
//     P(|T| > t) = I_{df/(df+t²)}(df/2, 1/2) = 1 - I_{t²/(df+t²)}(1/2, df/2)
//     (the t tail as an incomplete beta, and I_x(a, b) = 1 - I_{1-x}(b, a)),
//     and the quantile inverts that p-value by bisection;
//   - df > tLargeDF: the large-df expansions about the normal (Fisher,
//     "Expansion of Student's integral in powers of n⁻¹", Metron 5, 1925;
//     Abramowitz and Stegun 26.7.5 for the quantile),
//     P(T <= t) = Φ(t) - φ(t) [(t³ + t)/(4 df) + (3t⁷ - 7t⁵ - 5t³ - 3t)/(96 df²)] + O(df⁻³),
//     t_p = z + (z³ + z)/(4 df) + (5z⁵ + 16z³ + 3z)/(96 df²)
//   - (3z⁷ + 19z⁵ + 17z³ - 15z)/(384 df³) + O(df⁻⁴),
//     whose remainders at df = 1e4, measured against scipy, are below 1.2e-12
//     (two-sided p, absolute, any t) and 7e-13 (quantile, relative, alpha
//     down to 1e-12).
//
// testdata/vectors.json checks both regimes against scipy to 1e-9.
const tLargeDF = 1e4

// tTwoSidedP is P(|T_df| > |t|).
func tTwoSidedP(t, df float64) float64 {
	t = math.Abs(t)
	if df > tLargeDF {
		if t > 40 { // beyond float64 for any df > tLargeDF; keeps t⁷ from overflowing
			return 2 * normalCDF(-t)
		}
		t2 := t * t
		g := t*(t2+1)/(4*df) + t*(((3*t2-7)*t2-5)*t2-3)/(96*df*df)
		return 2 * (normalCDF(-t) + math.Exp(-t2/2)/math.Sqrt(2*math.Pi)*g)
	}
	t2 := t * t
	upper := mathext.RegIncBeta(df/2, 0.5, df/(df+t2)) // accurate while small
	if upper < 0.5 {
		return upper
	}
	return 1 - mathext.RegIncBeta(0.5, df/2, t2/(df+t2)) // accurate while upper is near 1
}

// tUpperQuantile is t > 0 with P(|T_df| > t) = p, the (1 - p/2) quantile,
// for p in (0, 1).
func tUpperQuantile(p, df float64) float64 {
	if df > tLargeDF {
		z := normalUpperQuantile(p / 2)
		z2 := z * z
		return z + z*(z2+1)/(4*df) + z*((5*z2+16)*z2+3)/(96*df*df) + z*(((3*z2+19)*z2+17)*z2-15)/(384*df*df*df)
	}
	// P(|T| > t) decreases in t: bisect -P, from t = 0 (P = 1) to a t
	// where P <= p, found by doubling.
	hi := 1.0
	for tTwoSidedP(hi, df) > p {
		hi *= 2
	}
	return solveIncreasing(func(t float64) float64 { return -tTwoSidedP(t, df) }, -p, 0, hi)
}

// logNormalCDFPlusHalfSquare is R(x) = log Φ(x) + x²/2, the piece of the
// one-sided mixture ratio that cancels its Gaussian exponent. Below x = -35
// Φ(x) underflows, so R comes from the asymptotic (Mills ratio) series
// Φ(x) = φ(x)/|x| · (1 - 1/x² + 3/x⁴ - 15/x⁶ + 105/x⁸ - 945/x¹⁰ + ...)
// (Abramowitz and Stegun 26.2.12), whose truncation error there is < 1e-14.
// gonum has no log-CDF, hence this.
func logNormalCDFPlusHalfSquare(x float64) float64 {
	if x >= -35 {
		return math.Log(normalCDF(x)) + x*x/2
	}
	y := 1 / (x * x)
	series := 1 - y*(1-y*(3-y*(15-y*(105-y*945))))
	return -math.Log(-x) - 0.5*math.Log(2*math.Pi) + math.Log(series)
}

// solveIncreasing returns x in [lo, hi] with f(x) = target, for f increasing
// on [lo, hi] with f(lo) <= target <= f(hi), by bisection to adjacent
// floats. gonum has no scalar root finder; bisection is exact enough (the
// last bit) and cannot diverge.
func solveIncreasing(f func(float64) float64, target, lo, hi float64) float64 {
	for range 2200 {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			break
		}
		if f(mid) < target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo + (hi-lo)/2
}

// SampleSize is a number of observations per arm. Values are the continuous
// solution of the sample-size equation (as statsmodels reports it); round up
// to plan.
type SampleSize struct {
	Control, Treatment float64
}

// Total is Control + Treatment.
func (s SampleSize) Total() float64 { return s.Control + s.Treatment }
