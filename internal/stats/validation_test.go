package stats

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

var (
	nan  = math.NaN()
	inf  = math.Inf(1)
	ok2  = Proportion{Successes: 40, Trials: 100}
	okS  = Summary{N: 50, Mean: 1, Variance: 2}
	okE  = Estimate{Diff: 0.01, Variance: 1e-4}
	okT  = MSPRT{Alpha: 0.05, Mixture: Mixture{Tau2: 1e-4}}
	okR  = RateRatioTest{Alpha: 0.05, PriorA: 1, PriorB: 1}
	okH  = Histogram{UpperBounds: []float64{0.1, 0.2, inf}, Counts: []int64{3, 4, 5}}
	okPA = PowerAnalysis{Alpha: 0.05, Ratio: 1}
	okSP = SequentialPlan{Effect: 0.03, VarianceControl: 0.16, VarianceTreatment: 0.14, Ratio: 1, Power: 0.8}
)

// TestRejectsInvalidInput: every function answers bad input with an error
// wrapping ErrInvalidInput that says what is wrong, and no result.
func TestRejectsInvalidInput(t *testing.T) {
	cases := []struct {
		name string
		call func() error
		msg  string // a fragment the message must contain
	}{
		{"z-test: zero trials", func() error { _, err := TwoProportionZTest(Proportion{0, 0}, ok2, 0.05); return err }, "trials 0"},
		{"z-test: successes > trials", func() error { _, err := TwoProportionZTest(ok2, Proportion{101, 100}, 0.05); return err }, "successes 101"},
		{"z-test: negative successes", func() error { _, err := TwoProportionZTest(Proportion{-1, 10}, ok2, 0.05); return err }, "successes -1"},
		{"z-test: alpha 0", func() error { _, err := TwoProportionZTest(ok2, ok2, 0); return err }, "alpha 0"},
		{"z-test: alpha 1", func() error { _, err := TwoProportionZTest(ok2, ok2, 1); return err }, "alpha 1"},
		{"z-test: alpha NaN", func() error { _, err := TwoProportionZTest(ok2, ok2, nan); return err }, "alpha NaN"},
		{"welch: n 1", func() error { _, err := WelchTTest(Summary{1, 0, 1}, okS, 0.05); return err }, "n 1"},
		{"welch: NaN mean", func() error { _, err := WelchTTest(okS, Summary{10, nan, 1}, 0.05); return err }, "mean is NaN"},
		{"welch: Inf mean", func() error { _, err := WelchTTest(okS, Summary{10, inf, 1}, 0.05); return err }, "mean is +Inf"},
		{"welch: negative variance", func() error { _, err := WelchTTest(okS, Summary{10, 0, -1}, 0.05); return err }, "variance -1"},
		{"welch: alpha 2", func() error { _, err := WelchTTest(okS, okS, 2); return err }, "alpha 2"},
		{"power: alpha NaN", func() error { _, err := PowerAnalysis{nan, 1}.Power(0.2, 100); return err }, "alpha"},
		{"power: ratio 0", func() error { _, err := PowerAnalysis{0.05, 0}.Power(0.2, 100); return err }, "ratio"},
		{"power: n 0", func() error { _, err := okPA.Power(0.2, 0); return err }, "sample size"},
		{"power: effect Inf", func() error { _, err := okPA.Power(inf, 10); return err }, "effect"},
		{"sample size: effect 0", func() error { _, err := okPA.SampleSize(0, 0.8); return err }, "effect size is 0"},
		{"sample size: power <= alpha", func() error { _, err := okPA.SampleSize(0.2, 0.04); return err }, "power 0.04"},
		{"sample size: power 1", func() error { _, err := okPA.SampleSize(0.2, 1); return err }, "power 1"},
		{"sample size: overflow", func() error { _, err := okPA.SampleSize(1e-200, 0.8); return err }, "too small"},
		{"mde: n NaN", func() error { _, err := okPA.MinimumDetectableEffect(nan, 0.8); return err }, "sample size"},
		{"cohen's h: p > 1", func() error { _, err := CohensH(1.1, 0.5); return err }, "1.1"},
		{"cohen's h inverse: unreachable", func() error { _, err := ProportionForCohensH(0.9, 2); return err }, "no proportion"},
		{"estimate: proportions invalid", func() error { _, err := DiffOfProportions(ok2, Proportion{5, 0}); return err }, "trials 0"},
		{"estimate: means invalid", func() error { _, err := DiffOfMeans(Summary{0, 0, 0}, okS); return err }, "n 0"},
		{"mixture: alpha 0", func() error { _, err := MixtureTightestAt(0, 1); return err }, "alpha"},
		{"mixture: variance 0", func() error { _, err := MixtureTightestAt(0.05, 0); return err }, "variance"},
		{"mixture: effect 0", func() error { _, err := MixtureForEffect(0.05, 0.8, 0); return err }, "effect is 0"},
		{"mixture: power 0.3", func() error { _, err := MixtureForEffect(0.05, 0.3, 0.1); return err }, "power 0.3"},
		{"msprt: zero mixture", func() error { _, err := MSPRT{Alpha: 0.05}.Look(okE); return err }, "MixtureForEffect"},
		{"msprt: bad sides", func() error { _, err := MSPRT{Alpha: 0.05, Mixture: Mixture{1}, Sides: 7}.Look(okE); return err }, "Sides(7)"},
		{"msprt: NaN null", func() error { _, err := MSPRT{Alpha: 0.05, Mixture: Mixture{1}, Null: nan}.Look(okE); return err }, "null"},
		{"msprt: variance 0", func() error { _, err := okT.Look(Estimate{Diff: 0.1, Variance: 0}); return err }, "variance"},
		{"msprt: diff Inf", func() error { _, err := okT.Look(Estimate{Diff: inf, Variance: 1}); return err }, "estimate is +Inf"},
		{"msprt: no looks", func() error { _, err := okT.Run(nil); return err }, "no looks"},
		{"msprt: a bad look", func() error { _, err := okT.Run([]Estimate{okE, {0, nan}}); return err }, "look 2"},
		{"msprt n: power 0.4", func() error { p := okSP; p.Power = 0.4; _, err := okT.SampleSize(p); return err }, "power 0.4"},
		{"msprt n: wrong side", func() error {
			p := okSP
			p.Effect = -0.03
			_, err := MSPRT{Alpha: 0.05, Mixture: Mixture{1e-4}, Sides: Greater}.SampleSize(p)
			return err
		}, "alternative side"},
		{"msprt n: no effect", func() error { p := okSP; p.Effect = 0; _, err := okT.SampleSize(p); return err }, "alternative side"},
		{"msprt n: variance NaN", func() error { p := okSP; p.VarianceControl = nan; _, err := okT.SampleSize(p); return err }, "control variance"},
		{"rate: prior 0", func() error { _, err := RateRatioTest{Alpha: 0.05}.Look(ok2, ok2); return err }, "uniform prior"},
		{"rate: margin -1", func() error {
			_, err := RateRatioTest{Alpha: 0.05, Margin: -1, PriorA: 1, PriorB: 1}.Look(ok2, ok2)
			return err
		}, "margin"},
		{"rate: bad counts", func() error { _, err := okR.Look(Proportion{3, 2}, ok2); return err }, "successes 3"},
		{"rate: no looks", func() error { _, err := okR.Run(nil); return err }, "no looks"},
		{"srm: one arm", func() error { _, err := SampleRatioMismatch([]int64{5}, []float64{1}); return err }, "two arms"},
		{"srm: lengths", func() error { _, err := SampleRatioMismatch([]int64{5, 5}, []float64{1}); return err }, "2 observed counts but 1 weights"},
		{"srm: negative count", func() error { _, err := SampleRatioMismatch([]int64{5, -5}, []float64{1, 1}); return err }, "negative"},
		{"srm: zero weight", func() error { _, err := SampleRatioMismatch([]int64{5, 5}, []float64{1, 0}); return err }, "weight 0"},
		{"srm: NaN weight", func() error { _, err := SampleRatioMismatch([]int64{5, 5}, []float64{nan, 1}); return err }, "weight NaN"},
		{"srm: no observations", func() error { _, err := SampleRatioMismatch([]int64{0, 0}, []float64{1, 1}); return err }, "no observations"},
		{"mann-whitney: empty x", func() error {
			_, err := MannWhitney(Histogram{UpperBounds: okH.UpperBounds, Counts: []int64{0, 0, 0}}, okH)
			return err
		}, "x: histogram is empty"},
		{"mann-whitney: no buckets", func() error { _, err := MannWhitney(Histogram{}, okH); return err }, "0 bucket bounds"},
		{"mann-whitney: lengths", func() error {
			_, err := MannWhitney(okH, Histogram{UpperBounds: okH.UpperBounds, Counts: []int64{1, 2}})
			return err
		}, "3 bucket bounds but 2 counts"},
		{"mann-whitney: negative count", func() error {
			_, err := MannWhitney(okH, Histogram{UpperBounds: okH.UpperBounds, Counts: []int64{1, -2, 3}})
			return err
		}, "negative count"},
		{"mann-whitney: unsorted bounds", func() error {
			_, err := MannWhitney(Histogram{UpperBounds: []float64{0.2, 0.1, inf}, Counts: []int64{1, 2, 3}}, okH)
			return err
		}, "increase strictly"},
		{"mann-whitney: mismatched buckets", func() error {
			_, err := MannWhitney(okH, Histogram{UpperBounds: []float64{0.1, 0.25, inf}, Counts: []int64{1, 2, 3}})
			return err
		}, "buckets differ"},
		{"cumulative: no buckets", func() error { _, err := HistogramFromCumulative(nil); return err }, "no buckets"},
		{"cumulative: non-monotone", func() error {
			_, err := HistogramFromCumulative([]Bucket{{0.1, 5}, {0.2, 4}, {inf, 9}})
			return err
		}, "non-decreasing"},
		{"cumulative: no +Inf", func() error { _, err := HistogramFromCumulative([]Bucket{{0.1, 5}, {0.2, 6}}); return err }, "+Inf"},
		{"cumulative: duplicate le", func() error {
			_, err := HistogramFromCumulative([]Bucket{{0.1, 5}, {0.1, 5}, {inf, 9}})
			return err
		}, "two buckets"},
		{"cumulative: fractional count", func() error {
			_, err := HistogramFromCumulative([]Bucket{{0.1, 5.5}, {inf, 9}})
			return err
		}, "whole number"},
		{"cumulative: NaN count", func() error { _, err := HistogramFromCumulative([]Bucket{{0.1, nan}, {inf, 9}}); return err }, "whole number"},
		{"cumulative: negative count", func() error { _, err := HistogramFromCumulative([]Bucket{{0.1, -1}, {inf, 9}}); return err }, "whole number"},
		{"cumulative: NaN bound", func() error { _, err := HistogramFromCumulative([]Bucket{{nan, 1}, {inf, 9}}); return err }, "NaN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("got %v, want an error wrapping ErrInvalidInput", err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
		})
	}
}

// TestNoVariance: valid data that cannot carry a test is ErrNoVariance, not
// a NaN.
func TestNoVariance(t *testing.T) {
	cases := map[string]func() error{
		"z-test, no errors anywhere": func() error {
			_, err := TwoProportionZTest(Proportion{0, 300}, Proportion{0, 2700}, 0.05)
			return err
		},
		"z-test, all successes": func() error {
			_, err := TwoProportionZTest(Proportion{10, 10}, Proportion{20, 20}, 0.05)
			return err
		},
		"welch, both constant": func() error { _, err := WelchTTest(Summary{5, 1, 0}, Summary{5, 2, 0}, 0.05); return err },
		"proportions estimate": func() error { _, err := DiffOfProportions(Proportion{0, 300}, Proportion{0, 2700}); return err },
		"means estimate":       func() error { _, err := DiffOfMeans(Summary{5, 1, 0}, Summary{5, 2, 0}); return err },
		"mann-whitney, one bucket": func() error {
			x := Histogram{UpperBounds: okH.UpperBounds, Counts: []int64{0, 7, 0}}
			y := Histogram{UpperBounds: okH.UpperBounds, Counts: []int64{0, 3, 0}}
			_, err := MannWhitney(x, y)
			return err
		},
	}
	for name, call := range cases {
		if err := call(); !errors.Is(err, ErrNoVariance) {
			t.Errorf("%s: got %v, want ErrNoVariance", name, err)
		}
	}
	// The rate-ratio test needs no variance: no events is no evidence.
	r, err := okR.Look(Proportion{0, 300}, Proportion{0, 2700})
	if err != nil || r.PValue != 1 || r.Lambda != 1 {
		t.Errorf("rate-ratio test with no events: %+v, %v; want Λ = 1, p = 1", r, err)
	}
}

// hasNaN reports a NaN in any float64 (or float64 slice) field, recursively.
func hasNaN(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Float64:
		return math.IsNaN(v.Float())
	case reflect.Struct:
		for i := range v.NumField() {
			if hasNaN(v.Field(i)) {
				return true
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			if hasNaN(v.Index(i)) {
				return true
			}
		}
	}
	return false
}

// TestNeverPanicsNorReturnsNaN throws random, extreme and degenerate inputs
// at every function: each returns an error or a result without NaN, and none
// panics.
func TestNeverPanicsNorReturnsNaN(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 7))
	floats := []float64{0, -0, 1, -1, 0.5, 1e-300, -1e-300, 1e300, -1e300, nan, inf, -inf, math.SmallestNonzeroFloat64, math.MaxFloat64, 1e-9, 0.999999999}
	f := func() float64 {
		if rng.IntN(3) == 0 {
			return floats[rng.IntN(len(floats))]
		}
		return (rng.Float64()*2 - 1) * math.Pow(10, float64(rng.IntN(20)-10))
	}
	prob := func() float64 {
		if rng.IntN(4) == 0 {
			return f()
		}
		return rng.Float64()
	}
	counts := []int64{0, 1, 2, 3, 1 << 40, -1}
	n := func() int64 {
		if rng.IntN(3) == 0 {
			return counts[rng.IntN(len(counts))]
		}
		return rng.Int64N(100000)
	}
	prop := func() Proportion {
		trials := n()
		if trials > 0 && rng.IntN(4) != 0 {
			return Proportion{Successes: rng.Int64N(trials + 1), Trials: trials}
		}
		return Proportion{Successes: n(), Trials: trials}
	}
	summary := func() Summary { return Summary{N: n(), Mean: f(), Variance: math.Abs(f())} }
	est := func() Estimate { return Estimate{Diff: f(), Variance: math.Abs(f())} }
	sides := func() Sides { return Sides(rng.IntN(4)) }
	hist := func() Histogram {
		h := Histogram{UpperBounds: okH.UpperBounds, Counts: make([]int64, 3)}
		for i := range h.Counts {
			h.Counts[i] = n() % 1000
		}
		return h
	}
	calls := []func() (any, error){
		func() (any, error) { return TwoProportionZTest(prop(), prop(), prob()) },
		func() (any, error) { return WelchTTest(summary(), summary(), prob()) },
		func() (any, error) { return PowerAnalysis{prob(), f()}.Power(f(), f()) },
		func() (any, error) { return PowerAnalysis{prob(), f()}.SampleSize(f(), prob()) },
		func() (any, error) { return PowerAnalysis{prob(), f()}.MinimumDetectableEffect(f(), prob()) },
		func() (any, error) { return CohensH(prob(), prob()) },
		func() (any, error) { return ProportionForCohensH(prob(), f()) },
		func() (any, error) { return DiffOfProportions(prop(), prop()) },
		func() (any, error) { return DiffOfMeans(summary(), summary()) },
		func() (any, error) { return MixtureTightestAt(prob(), f()) },
		func() (any, error) { return MixtureForEffect(prob(), prob(), f()) },
		func() (any, error) {
			return MSPRT{Alpha: prob(), Mixture: Mixture{math.Abs(f())}, Null: f(), Sides: sides()}.Look(est())
		},
		func() (any, error) {
			return MSPRT{Alpha: prob(), Mixture: Mixture{math.Abs(f())}, Sides: sides()}.Run([]Estimate{est(), est(), est()})
		},
		func() (any, error) {
			return MSPRT{Alpha: prob(), Mixture: Mixture{math.Abs(f())}, Sides: sides()}.SampleSize(SequentialPlan{
				Effect: f(), VarianceControl: math.Abs(f()), VarianceTreatment: math.Abs(f()), Ratio: math.Abs(f()), Power: prob()})
		},
		func() (any, error) {
			return RateRatioTest{Alpha: prob(), Margin: math.Abs(f()), PriorA: math.Abs(f()), PriorB: math.Abs(f())}.Look(prop(), prop())
		},
		func() (any, error) { return SampleRatioMismatch([]int64{n(), n(), n()}, []float64{f(), f(), f()}) },
		func() (any, error) { return MannWhitney(hist(), hist()) },
		func() (any, error) {
			return HistogramFromCumulative([]Bucket{{f(), float64(n())}, {f(), float64(n())}, {inf, float64(n())}})
		},
	}
	for i := range 3000 {
		for j, call := range calls {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("call %d, round %d panicked: %v", j, i, r)
					}
				}()
				res, err := call()
				if err == nil && hasNaN(reflect.ValueOf(res)) {
					t.Fatalf("call %d, round %d returned NaN without an error: %+v", j, i, res)
				}
			}()
		}
	}
}

func TestHistogramFromCumulative(t *testing.T) {
	// Prometheus returns bucket series in no particular order.
	h, err := HistogramFromCumulative([]Bucket{{inf, 10}, {0.1, 2}, {0.5, 7}, {0.2, 2}})
	if err != nil {
		t.Fatal(err)
	}
	want := Histogram{UpperBounds: []float64{0.1, 0.2, 0.5, inf}, Counts: []int64{2, 0, 5, 3}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %+v, want %+v", h, want)
	}
	if h.Total() != 10 {
		t.Errorf("total %d, want 10", h.Total())
	}
}

// TestMannWhitneyOnCanaryShapes: a slower canary shows in PGreater and the
// effect size; an identically shaped one does not.
func TestMannWhitneyOnCanaryShapes(t *testing.T) {
	bounds := []float64{0.05, 0.1, 0.2, 0.5, inf}
	stable := Histogram{UpperBounds: bounds, Counts: []int64{400, 2000, 350, 80, 10}}
	same := Histogram{UpperBounds: bounds, Counts: []int64{40, 200, 35, 8, 1}}
	slow := Histogram{UpperBounds: bounds, Counts: []int64{10, 120, 100, 40, 10}}
	r, err := MannWhitney(same, stable)
	if err != nil {
		t.Fatal(err)
	}
	if r.PTwoSided < 0.9 || math.Abs(r.Effect-0.5) > 0.01 {
		t.Errorf("same shape: %+v, want p near 1 and effect near 0.5", r)
	}
	r, err = MannWhitney(slow, stable)
	if err != nil {
		t.Fatal(err)
	}
	if r.PGreater > 1e-6 || r.Effect < 0.6 || r.PLess < 0.99 {
		t.Errorf("slow canary: %+v, want a tiny PGreater and effect > 0.6", r)
	}
}

// TestMSPRTConsistency: over random runs of looks, the null is outside the
// always-valid interval exactly when the test rejects, the interval's edge
// has Λ = 1/α, and the intersection never widens.
func TestMSPRTConsistency(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	for i := range 300 {
		test := MSPRT{Alpha: []float64{0.01, 0.05, 0.2}[i%3], Mixture: Mixture{Tau2: math.Pow(10, -5+3*rng.Float64())},
			Null: rng.NormFloat64() * 0.01, Sides: Sides(i % 3)}
		var looks []Estimate
		prev := Interval{Lower: math.Inf(-1), Upper: math.Inf(1)}
		for k := 1; k <= 10; k++ {
			v := 1e-4 / float64(k)
			looks = append(looks, Estimate{Diff: test.Null + rng.NormFloat64()*math.Sqrt(v)*2, Variance: v})
			res, err := test.Run(looks)
			if err != nil {
				t.Fatal(err)
			}
			if res.CI.Lower < prev.Lower || res.CI.Upper > prev.Upper {
				t.Fatalf("%v: the running interval widened from %+v to %+v", test, prev, res.CI)
			}
			prev = res.CI
			if !res.CI.Empty() && res.Reject == res.CI.Contains(test.Null) {
				t.Fatalf("%v look %d: Reject = %v but CI %+v and null %v", test, k, res.Reject, res.CI, test.Null)
			}
			// at the edge of this look's own interval, Λ(θ) = 1/α
			l := res.Last
			edge := l.CI.Lower
			if test.Sides == Less {
				edge = l.CI.Upper
			}
			at := test
			at.Null = edge
			e, err := at.Look(l.Estimate)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(e.LogLambda-math.Log(1/test.Alpha)) > 1e-9 {
				t.Fatalf("%v: ln Λ at the interval's edge %v is %v, want ln(1/α) = %v", test, edge, e.LogLambda, math.Log(1/test.Alpha))
			}
		}
	}
}

// TestMixtureForEffectIsNearOptimal: the τ MixtureForEffect picks needs a
// sequential sample size within 1% of the best τ on a fine grid, for several
// effects, variances, splits and powers.
func TestMixtureForEffectIsNearOptimal(t *testing.T) {
	for _, c := range []struct{ effect, vc, vt, ratio, power, alpha float64 }{
		{0.03, 0.16, 0.1411, 1, 0.8, 0.05},
		{0.01, 0.25, 0.25, 1, 0.9, 0.05},
		{0.019, 0.000999, 0.0196, 1.0 / 9, 0.8, 0.05},
		{0.5, 1, 4, 3, 0.95, 0.01},
	} {
		mix, err := MixtureForEffect(c.alpha, c.power, c.effect)
		if err != nil {
			t.Fatal(err)
		}
		plan := SequentialPlan{Effect: c.effect, VarianceControl: c.vc, VarianceTreatment: c.vt, Ratio: c.ratio, Power: c.power}
		size := func(tau2 float64) float64 {
			n, err := MSPRT{Alpha: c.alpha, Mixture: Mixture{tau2}}.SampleSize(plan)
			if err != nil {
				t.Fatal(err)
			}
			return n.Control
		}
		chosen, best, bestTau2 := size(mix.Tau2), math.Inf(1), 0.0
		for e := -2.0; e <= 2; e += 0.01 {
			tau2 := mix.Tau2 * math.Pow(10, e)
			if n := size(tau2); n < best {
				best, bestTau2 = n, tau2
			}
		}
		t.Logf("effect %v: MixtureForEffect τ² = %.4g needs n = %.1f; the best τ² on the grid, %.4g, needs %.1f (+%.2f%%)",
			c.effect, mix.Tau2, chosen, bestTau2, best, 100*(chosen/best-1))
		if chosen > best*1.01 {
			t.Errorf("effect %v: MixtureForEffect's τ needs %.1f, %.2f%% more than the best τ's %.1f", c.effect, chosen, 100*(chosen/best-1), best)
		}
	}
}

// TestLogNormalCDFTail: the asymptotic series takes over from log Φ
// smoothly, and agrees with the direct value where both work.
func TestLogNormalCDFTail(t *testing.T) {
	for _, x := range []float64{-35, -33, -30} {
		y := 1 / (x * x)
		series := -math.Log(-x) - 0.5*math.Log(2*math.Pi) + math.Log(1-y*(1-y*(3-y*(15-y*(105-y*945)))))
		direct := math.Log(normalCDF(x)) + x*x/2
		if math.Abs(series-direct) > 1e-12 {
			t.Errorf("x = %v: series %v, direct %v", x, series, direct)
		}
	}
	below, above := logNormalCDFPlusHalfSquare(math.Nextafter(-35, -36)), logNormalCDFPlusHalfSquare(-35)
	if math.Abs(below-above) > 1e-12 {
		t.Errorf("jump at -35: %v vs %v", below, above)
	}
	if v := logNormalCDFPlusHalfSquare(-1e10); math.IsNaN(v) || math.IsInf(v, 0) {
		t.Errorf("R(-1e10) = %v", v)
	}
}

func TestSidesString(t *testing.T) {
	for s, want := range map[Sides]string{TwoSided: "two-sided", Greater: "greater", Less: "less", 9: "Sides(9)"} {
		if got := fmt.Sprint(s); got != want {
			t.Errorf("%d: %q, want %q", int(s), got, want)
		}
	}
}
