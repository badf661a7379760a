package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ml-platform/platform/internal/vectortest"
)

// The reference values in testdata/vectors.json come from scipy, statsmodels
// and gbstats (testdata/gen_vectors.py). Every quantity is compared to 1e-9,
// in one of two ways:
//
//   - absolute, |got - want| <= 1e-9, for probabilities (p-values, power,
//     the common-language effect size): they live in [0, 1], decisions
//     compare them with alpha, and a relative bound would demand agreement
//     on p = 1e-300 that no two tail algorithms (gonum's and Cephes') give
//     or any decision needs;
//   - relative, |got - want| <= 1e-9 |want| (with a 1e-12 absolute floor for
//     values that are zero), for everything with a scale: differences,
//     statistics (z, t, U, chi-square, ln Λ), degrees of freedom, interval
//     bounds, sample sizes, effect sizes, τ². Their magnitudes run from 1e-5
//     (a 5xx-rate difference) to 1e5 (a sample size), so an absolute bound
//     would be meaningless at one end and too strict at the other.
type tolerance struct {
	relative bool
	eps      float64
}

var (
	absTol = tolerance{relative: false, eps: 1e-9}
	relTol = tolerance{relative: true, eps: 1e-9}
)

func (tol tolerance) bound(want float64) float64 {
	if tol.relative {
		return math.Max(tol.eps*math.Abs(want), 1e-12)
	}
	return tol.eps
}

// within is the one comparison every vector goes through.
func within(name string, got, want float64, tol tolerance) error {
	if math.IsNaN(got) || math.Abs(got-want) > tol.bound(want) {
		kind := "absolute"
		if tol.relative {
			kind = "relative"
		}
		return fmt.Errorf("%s = %.17g, want %.17g (diff %.3g, %s tolerance %.3g)", name, got, want, got-want, kind, tol.bound(want))
	}
	return nil
}

// vectors mirrors testdata/vectors.json.
type vectors struct {
	Versions         map[string]string `json:"versions"`
	ZTest            []zCase           `json:"ztest"`
	Welch            []welchCase       `json:"welch"`
	PowerProportions []powerPropCase   `json:"power_proportions"`
	PowerMeans       []powerMeanCase   `json:"power_means"`
	MSPRT            []msprtCase       `json:"msprt"`
	MSPRTRuns        []msprtRunCase    `json:"msprt_runs"`
	GBStats          []gbstatsCase     `json:"gbstats"`
	SequentialN      []seqNCase        `json:"sequential_n"`
	RateRatio        []rateCase        `json:"rate_ratio"`
	SRM              []srmCase         `json:"srm"`
	MannWhitney      []mwCase          `json:"mann_whitney"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("testdata/vectors.json: %v", err)
	}
	return v
}

func sidesOf(s string) (Sides, error) {
	switch s {
	case "two-sided":
		return TwoSided, nil
	case "greater":
		return Greater, nil
	case "less":
		return Less, nil
	}
	return 0, fmt.Errorf("unknown sides %q", s)
}

// optional is a reference value that may be absent (an infinite interval
// end, a statsmodels answer that does not exist).
type optional = *float64

func checkOptional(name string, got float64, want optional, tol tolerance, infinite float64) error {
	if want == nil {
		if got != infinite {
			return fmt.Errorf("%s = %v, want %v", name, got, infinite)
		}
		return nil
	}
	return within(name, got, *want, tol)
}

type zCase struct {
	Treatment Proportion `json:"treatment"`
	Control   Proportion `json:"control"`
	Alpha     float64    `json:"alpha"`
	Want      struct {
		Diff    float64 `json:"diff"`
		Z       float64 `json:"z"`
		PValue  float64 `json:"p_value"`
		CILower float64 `json:"ci_lower"`
		CIUpper float64 `json:"ci_upper"`
	} `json:"want"`
}

func (c zCase) check() error {
	r, err := TwoProportionZTest(c.Treatment, c.Control, c.Alpha)
	if err != nil {
		return err
	}
	return errors.Join(
		within("diff", r.Diff, c.Want.Diff, relTol),
		within("z", r.Z, c.Want.Z, relTol),
		within("p", r.PValue, c.Want.PValue, absTol),
		within("ci.lower", r.CI.Lower, c.Want.CILower, relTol),
		within("ci.upper", r.CI.Upper, c.Want.CIUpper, relTol),
	)
}

type welchCase struct {
	Treatment summaryJSON `json:"treatment"`
	Control   summaryJSON `json:"control"`
	Alpha     float64     `json:"alpha"`
	Want      struct {
		Diff    float64 `json:"diff"`
		T       float64 `json:"t"`
		DF      float64 `json:"df"`
		PValue  float64 `json:"p_value"`
		CILower float64 `json:"ci_lower"`
		CIUpper float64 `json:"ci_upper"`
	} `json:"want"`
}

type summaryJSON struct {
	N        int64   `json:"n"`
	Mean     float64 `json:"mean"`
	Variance float64 `json:"variance"`
}

func (s summaryJSON) summary() Summary { return Summary{N: s.N, Mean: s.Mean, Variance: s.Variance} }

func (c welchCase) check() error {
	r, err := WelchTTest(c.Treatment.summary(), c.Control.summary(), c.Alpha)
	if err != nil {
		return err
	}
	return errors.Join(
		within("diff", r.Diff, c.Want.Diff, relTol),
		within("t", r.T, c.Want.T, relTol),
		within("df", r.DF, c.Want.DF, relTol),
		within("p", r.PValue, c.Want.PValue, absTol),
		within("ci.lower", r.CI.Lower, c.Want.CILower, relTol),
		within("ci.upper", r.CI.Upper, c.Want.CIUpper, relTol),
	)
}

type powerPropCase struct {
	PControl   float64 `json:"p_control"`
	PTreatment float64 `json:"p_treatment"`
	Alpha      float64 `json:"alpha"`
	Power      float64 `json:"power"`
	Ratio      float64 `json:"ratio"`
	Want       struct {
		H                  float64  `json:"h"`
		NControl           float64  `json:"n_control"`
		NControlStatsmodel optional `json:"n_control_statsmodels"`
		N                  float64  `json:"n"`
		PowerAtN           float64  `json:"power_at_n"`
		MDEHAtN            float64  `json:"mde_h_at_n"`
		MDEPTreatmentAtN   optional `json:"mde_p_treatment_at_n"`
	} `json:"want"`
}

// statsmodelsSolveTol is how close NormalIndPower.solve_power's own answer
// is expected to be: its root finder stops early (see gen_vectors.py), so
// that comparison only guards against solving a different equation.
const statsmodelsSolveTol = 1e-6

func (c powerPropCase) check() error {
	h, err := CohensH(c.PTreatment, c.PControl)
	if err != nil {
		return err
	}
	a := PowerAnalysis{Alpha: c.Alpha, Ratio: c.Ratio}
	n, err := a.SampleSize(h, c.Power)
	if err != nil {
		return err
	}
	pw, err := a.Power(h, c.Want.N)
	if err != nil {
		return err
	}
	mde, err := a.MinimumDetectableEffect(c.Want.N, c.Power)
	if err != nil {
		return err
	}
	errs := []error{
		within("h", h, c.Want.H, relTol),
		within("n_control", n.Control, c.Want.NControl, relTol),
		within("n_treatment", n.Treatment, c.Ratio*c.Want.NControl, relTol),
		within("power", pw, c.Want.PowerAtN, absTol),
		within("mde_h", mde, c.Want.MDEHAtN, relTol),
	}
	if c.Want.NControlStatsmodel != nil {
		errs = append(errs, within("n_control vs solve_power", n.Control, *c.Want.NControlStatsmodel, tolerance{relative: true, eps: statsmodelsSolveTol}))
	}
	if c.Want.MDEPTreatmentAtN != nil {
		p, err := ProportionForCohensH(c.PControl, mde)
		errs = append(errs, err, within("mde_p_treatment", p, *c.Want.MDEPTreatmentAtN, relTol))
	}
	return errors.Join(errs...)
}

type powerMeanCase struct {
	Effect float64 `json:"effect"`
	Alpha  float64 `json:"alpha"`
	Power  float64 `json:"power"`
	Ratio  float64 `json:"ratio"`
	Want   struct {
		NControl           float64  `json:"n_control"`
		NControlStatsmodel optional `json:"n_control_statsmodels"`
		N                  float64  `json:"n"`
		PowerAtN           float64  `json:"power_at_n"`
		MDEAtN             float64  `json:"mde_at_n"`
	} `json:"want"`
}

func (c powerMeanCase) check() error {
	a := PowerAnalysis{Alpha: c.Alpha, Ratio: c.Ratio}
	n, err := a.SampleSize(c.Effect, c.Power)
	if err != nil {
		return err
	}
	pw, err := a.Power(c.Effect, c.Want.N)
	if err != nil {
		return err
	}
	mde, err := a.MinimumDetectableEffect(c.Want.N, c.Power)
	if err != nil {
		return err
	}
	errs := []error{
		within("n_control", n.Control, c.Want.NControl, relTol),
		within("power", pw, c.Want.PowerAtN, absTol),
		within("mde", mde, c.Want.MDEAtN, relTol),
	}
	if c.Want.NControlStatsmodel != nil {
		errs = append(errs, within("n_control vs solve_power", n.Control, *c.Want.NControlStatsmodel, tolerance{relative: true, eps: statsmodelsSolveTol}))
	}
	return errors.Join(errs...)
}

type msprtCase struct {
	Estimate float64 `json:"estimate"`
	Variance float64 `json:"variance"`
	Null     float64 `json:"null"`
	Tau2     float64 `json:"tau2"`
	Alpha    float64 `json:"alpha"`
	Sides    string  `json:"sides"`
	Want     struct {
		LogLambda float64  `json:"log_lambda"`
		PValue    float64  `json:"p_value"`
		CILower   optional `json:"ci_lower"`
		CIUpper   optional `json:"ci_upper"`
	} `json:"want"`
}

func (c msprtCase) check() error {
	sides, err := sidesOf(c.Sides)
	if err != nil {
		return err
	}
	test := MSPRT{Alpha: c.Alpha, Mixture: Mixture{Tau2: c.Tau2}, Null: c.Null, Sides: sides}
	r, err := test.Look(Estimate{Diff: c.Estimate, Variance: c.Variance})
	if err != nil {
		return err
	}
	return errors.Join(
		within("ln Λ", r.LogLambda, c.Want.LogLambda, relTol),
		within("p", r.PValue, c.Want.PValue, absTol),
		checkOptional("ci.lower", r.CI.Lower, c.Want.CILower, relTol, math.Inf(-1)),
		checkOptional("ci.upper", r.CI.Upper, c.Want.CIUpper, relTol, math.Inf(1)),
	)
}

type msprtRunCase struct {
	Sides string  `json:"sides"`
	Tau2  float64 `json:"tau2"`
	Alpha float64 `json:"alpha"`
	Null  float64 `json:"null"`
	Looks []struct {
		Treatment Proportion `json:"treatment"`
		Control   Proportion `json:"control"`
	} `json:"looks"`
	Want []struct {
		PValue     float64  `json:"p_value"`
		LookPValue float64  `json:"look_p_value"`
		CILower    optional `json:"ci_lower"`
		CIUpper    optional `json:"ci_upper"`
	} `json:"want"`
}

func (c msprtRunCase) check() error {
	sides, err := sidesOf(c.Sides)
	if err != nil {
		return err
	}
	test := MSPRT{Alpha: c.Alpha, Mixture: Mixture{Tau2: c.Tau2}, Null: c.Null, Sides: sides}
	var looks []Estimate
	var errs []error
	for i, l := range c.Looks {
		e, err := DiffOfProportions(l.Treatment, l.Control)
		if err != nil {
			return err
		}
		looks = append(looks, e)
		r, err := test.Run(looks)
		if err != nil {
			return err
		}
		w := c.Want[i]
		at := fmt.Sprintf("look %d: ", i+1)
		errs = append(errs,
			within(at+"p", r.PValue, w.PValue, absTol),
			within(at+"look p", r.Last.PValue, w.LookPValue, absTol),
			checkOptional(at+"ci.lower", r.CI.Lower, w.CILower, relTol, math.Inf(-1)),
			checkOptional(at+"ci.upper", r.CI.Upper, w.CIUpper, relTol, math.Inf(1)),
		)
		if r.Reject != (r.PValue <= c.Alpha) {
			errs = append(errs, fmt.Errorf("%sReject = %v with p = %v", at, r.Reject, r.PValue))
		}
	}
	return errors.Join(errs...)
}

type gbstatsCase struct {
	Kind      string          `json:"kind"`
	Control   json.RawMessage `json:"control"`
	Treatment json.RawMessage `json:"treatment"`
	Alpha     float64         `json:"alpha"`
	Tuning    float64         `json:"tuning"`
	Want      struct {
		Estimate float64 `json:"estimate"`
		PValue   float64 `json:"p_value"`
		CILower  float64 `json:"ci_lower"`
		CIUpper  float64 `json:"ci_upper"`
	} `json:"want"`
}

// gbstatsSums is gbstats' SampleMeanStatistic input.
type gbstatsSums struct {
	N          int64   `json:"n"`
	Sum        float64 `json:"sum"`
	SumSquares float64 `json:"sum_squares"`
}

// summary is how gbstats turns sums into a mean and an unbiased variance.
func (s gbstatsSums) summary() Summary {
	n := float64(s.N)
	return Summary{N: s.N, Mean: s.Sum / n, Variance: (s.SumSquares - s.Sum*s.Sum/n) / (n - 1)}
}

// estimate builds the Estimate and the total N gbstats would see.
func (c gbstatsCase) estimate() (Estimate, float64, error) {
	switch c.Kind {
	case "proportion":
		var t, ctl Proportion
		if err := errors.Join(json.Unmarshal(c.Treatment, &t), json.Unmarshal(c.Control, &ctl)); err != nil {
			return Estimate{}, 0, err
		}
		e, err := DiffOfProportions(t, ctl)
		return e, float64(t.Trials + ctl.Trials), err
	case "mean":
		var t, ctl gbstatsSums
		if err := errors.Join(json.Unmarshal(c.Treatment, &t), json.Unmarshal(c.Control, &ctl)); err != nil {
			return Estimate{}, 0, err
		}
		e, err := DiffOfMeans(t.summary(), ctl.summary())
		return e, float64(t.N + ctl.N), err
	}
	return Estimate{}, 0, fmt.Errorf("unknown kind %q", c.Kind)
}

// check runs GrowthBook's parametrisation through MSPRT: ρ² = r*(α)/N* with
// N* the tuning parameter, σ² = N·V with N = n_a + n_b, τ² = ρ²σ², i.e.
// MixtureTightestAt(α, σ²/N*).
func (c gbstatsCase) check() error {
	e, n, err := c.estimate()
	if err != nil {
		return err
	}
	mix, err := MixtureTightestAt(c.Alpha, n*e.Variance/c.Tuning)
	if err != nil {
		return err
	}
	r, err := MSPRT{Alpha: c.Alpha, Mixture: mix, Sides: TwoSided}.Look(e)
	if err != nil {
		return err
	}
	return errors.Join(
		within("estimate", e.Diff, c.Want.Estimate, relTol),
		within("p", r.PValue, c.Want.PValue, absTol),
		within("ci.lower", r.CI.Lower, c.Want.CILower, relTol),
		within("ci.upper", r.CI.Upper, c.Want.CIUpper, relTol),
	)
}

type seqNCase struct {
	Effect            float64 `json:"effect"`
	Null              float64 `json:"null"`
	VarianceControl   float64 `json:"variance_control"`
	VarianceTreatment float64 `json:"variance_treatment"`
	Ratio             float64 `json:"ratio"`
	Alpha             float64 `json:"alpha"`
	Power             float64 `json:"power"`
	Tau2              float64 `json:"tau2"`
	Sides             string  `json:"sides"`
	Want              struct {
		NControl float64 `json:"n_control"`
	} `json:"want"`
}

func (c seqNCase) check() error {
	sides, err := sidesOf(c.Sides)
	if err != nil {
		return err
	}
	test := MSPRT{Alpha: c.Alpha, Mixture: Mixture{Tau2: c.Tau2}, Null: c.Null, Sides: sides}
	n, err := test.SampleSize(SequentialPlan{Effect: c.Effect, VarianceControl: c.VarianceControl,
		VarianceTreatment: c.VarianceTreatment, Ratio: c.Ratio, Power: c.Power})
	if err != nil {
		return err
	}
	return errors.Join(
		within("n_control", n.Control, c.Want.NControl, relTol),
		within("n_treatment", n.Treatment, c.Ratio*c.Want.NControl, relTol),
	)
}

type rateCase struct {
	Treatment Proportion `json:"treatment"`
	Control   Proportion `json:"control"`
	Margin    float64    `json:"margin"`
	PriorA    float64    `json:"prior_a"`
	PriorB    float64    `json:"prior_b"`
	Alpha     float64    `json:"alpha"`
	Want      struct {
		NullShare float64 `json:"null_share"`
		LogLambda float64 `json:"log_lambda"`
		PValue    float64 `json:"p_value"`
	} `json:"want"`
}

func (c rateCase) check() error {
	test := RateRatioTest{Alpha: c.Alpha, Margin: c.Margin, PriorA: c.PriorA, PriorB: c.PriorB}
	r, err := test.Look(c.Treatment, c.Control)
	if err != nil {
		return err
	}
	return errors.Join(
		within("q0", r.NullShare, c.Want.NullShare, relTol),
		within("ln Λ", r.LogLambda, c.Want.LogLambda, relTol),
		within("p", r.PValue, c.Want.PValue, absTol),
	)
}

type srmCase struct {
	Observed []int64   `json:"observed"`
	Weights  []float64 `json:"weights"`
	Want     struct {
		ChiSquare float64 `json:"chi_square"`
		DF        int     `json:"df"`
		PValue    float64 `json:"p_value"`
	} `json:"want"`
}

func (c srmCase) check() error {
	r, err := SampleRatioMismatch(c.Observed, c.Weights)
	if err != nil {
		return err
	}
	var dfErr error
	if r.DF != c.Want.DF {
		dfErr = fmt.Errorf("df = %d, want %d", r.DF, c.Want.DF)
	}
	return errors.Join(dfErr,
		within("chi2", r.ChiSquare, c.Want.ChiSquare, relTol),
		within("p", r.PValue, c.Want.PValue, absTol),
	)
}

// bound is a bucket bound in vectors.json: a number or "+Inf".
type bound float64

func (b *bound) UnmarshalJSON(raw []byte) error {
	if string(raw) == `"+Inf"` {
		*b = bound(math.Inf(1))
		return nil
	}
	var f float64
	err := json.Unmarshal(raw, &f)
	*b = bound(f)
	return err
}

type mwCase struct {
	UpperBounds []bound `json:"upper_bounds"`
	X           []int64 `json:"x"`
	Y           []int64 `json:"y"`
	Want        struct {
		U         float64 `json:"u"`
		PTwoSided float64 `json:"p_two_sided"`
		PGreater  float64 `json:"p_greater"`
		PLess     float64 `json:"p_less"`
		Effect    float64 `json:"effect"`
	} `json:"want"`
}

// histograms goes through HistogramFromCumulative, as a canary judge would
// with Prometheus buckets.
func (c mwCase) histograms() (Histogram, Histogram, error) {
	cumulative := func(counts []int64) []Bucket {
		var run float64
		bs := make([]Bucket, len(counts))
		for i, n := range counts {
			run += float64(n)
			bs[i] = Bucket{UpperBound: float64(c.UpperBounds[i]), CumulativeCount: run}
		}
		return bs
	}
	x, err := HistogramFromCumulative(cumulative(c.X))
	if err != nil {
		return Histogram{}, Histogram{}, err
	}
	y, err := HistogramFromCumulative(cumulative(c.Y))
	return x, y, err
}

func (c mwCase) check() error {
	x, y, err := c.histograms()
	if err != nil {
		return err
	}
	r, err := MannWhitney(x, y)
	if err != nil {
		return err
	}
	return errors.Join(
		within("U", r.U, c.Want.U, relTol),
		within("p two-sided", r.PTwoSided, c.Want.PTwoSided, absTol),
		within("p greater", r.PGreater, c.Want.PGreater, absTol),
		within("p less", r.PLess, c.Want.PLess, absTol),
		within("effect", r.Effect, c.Want.Effect, absTol),
	)
}

type checker interface{ check() error }

func runCases[C checker](t *testing.T, name string, cases []C) {
	t.Helper()
	if len(cases) < 4 {
		t.Fatalf("%s: only %d vectors; the generator should write a few dozen", name, len(cases))
	}
	for i, c := range cases {
		if err := c.check(); err != nil {
			t.Errorf("%s[%d] %+v:\n%v", name, i, c, err)
		}
	}
}

func TestMatchesReferenceImplementations(t *testing.T) {
	v := loadVectors(t)
	t.Logf("reference versions: %v", v.Versions)
	t.Run("ztest/statsmodels", func(t *testing.T) { runCases(t, "ztest", v.ZTest) })
	t.Run("welch/scipy", func(t *testing.T) { runCases(t, "welch", v.Welch) })
	t.Run("power_proportions/statsmodels", func(t *testing.T) { runCases(t, "power_proportions", v.PowerProportions) })
	t.Run("power_means/statsmodels", func(t *testing.T) { runCases(t, "power_means", v.PowerMeans) })
	t.Run("msprt/numpy", func(t *testing.T) { runCases(t, "msprt", v.MSPRT) })
	t.Run("msprt_runs/numpy", func(t *testing.T) { runCases(t, "msprt_runs", v.MSPRTRuns) })
	t.Run("gbstats", func(t *testing.T) { runCases(t, "gbstats", v.GBStats) })
	t.Run("sequential_n/scipy", func(t *testing.T) { runCases(t, "sequential_n", v.SequentialN) })
	t.Run("rate_ratio/scipy", func(t *testing.T) { runCases(t, "rate_ratio", v.RateRatio) })
	t.Run("srm/scipy", func(t *testing.T) { runCases(t, "srm", v.SRM) })
	t.Run("mann_whitney/scipy", func(t *testing.T) { runCases(t, "mann_whitney", v.MannWhitney) })
}

// TestComparisonCatchesPerturbation plants a 1e-6 error in one reference
// value of every family, in the value's own tolerance kind, and demands that
// the comparison rejects it: a comparator that compared nothing, or compared
// too loosely, would pass the test above and fail this one.
func TestComparisonCatchesPerturbation(t *testing.T) {
	v := loadVectors(t)
	rel := func(x *float64) { *x *= 1 + 1e-6 }
	abs := func(x *float64) { *x += 1e-6 }
	planted := map[string]checker{}
	{
		c := v.ZTest[0]
		abs(&c.Want.PValue)
		planted["ztest p"] = c
	}
	{
		c := v.ZTest[1]
		rel(&c.Want.CILower)
		planted["ztest ci"] = c
	}
	{
		c := v.Welch[2]
		rel(&c.Want.DF)
		planted["welch df"] = c
	}
	{
		c := v.PowerProportions[0]
		rel(&c.Want.NControl)
		planted["power n"] = c
	}
	{
		c := v.PowerMeans[0]
		rel(&c.Want.MDEAtN)
		planted["power mde"] = c
	}
	{
		c := v.MSPRT[0]
		rel(&c.Want.LogLambda)
		planted["msprt ln Λ"] = c
	}
	{
		c := v.MSPRT[7] // one-sided
		w := *c.Want.CILower
		rel(&w)
		c.Want.CILower = &w
		planted["msprt one-sided ci"] = c
	}
	{
		c := v.GBStats[0]
		rel(&c.Want.CIUpper)
		planted["gbstats ci"] = c
	}
	{
		c := v.SequentialN[0]
		rel(&c.Want.NControl)
		planted["sequential n"] = c
	}
	{
		c := v.RateRatio[2]
		rel(&c.Want.LogLambda)
		planted["rate-ratio ln Λ"] = c
	}
	{
		c := v.SRM[1]
		abs(&c.Want.PValue)
		planted["srm p"] = c
	}
	{
		c := v.MannWhitney[1]
		rel(&c.Want.U)
		planted["mann-whitney U"] = c
	}
	for name, c := range planted {
		if err := c.check(); err == nil {
			t.Errorf("%s: a 1e-6 perturbation passed the 1e-9 comparison", name)
		} else {
			t.Logf("%s: caught: %v", name, err)
		}
	}
}

// TestVectorsFresh regenerates vectors.json with the pinned reference
// implementations and fails if the committed file differs, so the vectors
// cannot drift from the generator or its pins. Identical bytes pass at once.
// Otherwise the two documents must have the same shape and strings, and
// numbers equal to vectortest.Tolerance: the generator's own arithmetic is
// deterministic, but scipy's and gbstats' numpy may round the last bit
// differently on another CPU, and that is not staleness (a changed case or
// formula moves values by far more).
func TestVectorsFresh(t *testing.T) {
	t.Parallel()
	vectortest.Fresh(t, filepath.Join("testdata", "gen_vectors.py"), filepath.Join("testdata", "vectors.json"))
}

// TestFreshnessCatchesStaleVectors plants a stale value and a missing case in
// a copy of vectors.json and demands that the freshness comparison rejects
// both, while a last-bit difference passes.
func TestFreshnessCatchesStaleVectors(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(committed, &doc); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(map[string]any)) []byte {
		var d map[string]any
		if err := json.Unmarshal(committed, &d); err != nil {
			t.Fatal(err)
		}
		f(d)
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	firstWant := func(d map[string]any) map[string]any {
		return d["ztest"].([]any)[0].(map[string]any)["want"].(map[string]any)
	}
	stale := mutate(func(d map[string]any) { firstWant(d)["z"] = firstWant(d)["z"].(float64) * (1 + 1e-9) })
	missing := mutate(func(d map[string]any) { d["srm"] = d["srm"].([]any)[1:] })
	rounding := mutate(func(d map[string]any) { firstWant(d)["z"] = math.Nextafter(firstWant(d)["z"].(float64), 0) })
	if err := vectortest.Same(stale, committed); err == nil {
		t.Error("a value off by 1e-9 passed the freshness comparison")
	}
	if err := vectortest.Same(missing, committed); err == nil {
		t.Error("a missing case passed the freshness comparison")
	}
	if err := vectortest.Same(rounding, committed); err != nil {
		t.Errorf("a last-bit difference failed the freshness comparison: %v", err)
	}
}
