package stats_test

import (
	"errors"
	"fmt"
	"math"

	"github.com/ml-platform/platform/internal/stats"
)

// The A/B analyser: plan an accuracy experiment, then read it at every look.
func ExampleMSPRT() {
	const alpha, power, pControl, lift = 0.05, 0.8, 0.80, 0.03
	mix, err := stats.MixtureForEffect(alpha, power, lift) // the platform's default τ
	if err != nil {
		panic(err)
	}
	test := stats.MSPRT{Alpha: alpha, Mixture: mix, Sides: stats.TwoSided}
	pt := pControl + lift
	plan, err := test.SampleSize(stats.SequentialPlan{Effect: lift, VarianceControl: pControl * (1 - pControl),
		VarianceTreatment: pt * (1 - pt), Ratio: 1, Power: power})
	if err != nil {
		panic(err)
	}
	fmt.Printf("plan: %.0f per arm\n", math.Ceil(plan.Control))

	// Cumulative feedback at three looks (correct predictions / feedback events).
	var looks []stats.Estimate
	for _, l := range [][4]int64{{810, 1000, 800, 1000}, {1680, 2000, 1610, 2000}, {2520, 3000, 2405, 3000}} {
		e, err := stats.DiffOfProportions(stats.Proportion{Successes: l[0], Trials: l[1]}, stats.Proportion{Successes: l[2], Trials: l[3]})
		if err != nil {
			panic(err)
		}
		looks = append(looks, e)
		res, err := test.Run(looks)
		if err != nil {
			panic(err)
		}
		fmt.Printf("look %d: diff %+.4f, always-valid p %.4f, CI [%+.4f, %+.4f], reject %v; about %.0f more per arm to the plan\n",
			res.Looks, e.Diff, res.PValue, res.CI.Lower, res.CI.Upper, res.Reject, math.Max(0, math.Ceil(plan.Control)-float64(l[1])))
	}
	// Output:
	// plan: 5029 per arm
	// look 1: diff +0.0100, always-valid p 1.0000, CI [-0.0500, +0.0700], reject false; about 4029 more per arm to the plan
	// look 2: diff +0.0350, always-valid p 0.0827, CI [-0.0026, +0.0700], reject false; about 3029 more per arm to the plan
	// look 3: diff +0.0383, always-valid p 0.0048, CI [+0.0081, +0.0686], reject true; about 2029 more per arm to the plan
}

// The canary judge on 5xx: cumulative counts at every one-minute look.
func ExampleRateRatioTest() {
	test := stats.RateRatioTest{Alpha: 0.05, Margin: 0, PriorA: 1, PriorB: 1}
	looks := []stats.Arms{
		{Treatment: stats.Proportion{Successes: 4, Trials: 300}, Control: stats.Proportion{Successes: 3, Trials: 2700}},
		{Treatment: stats.Proportion{Successes: 11, Trials: 600}, Control: stats.Proportion{Successes: 6, Trials: 5400}},
	}
	res, err := test.Run(looks)
	if err != nil {
		panic(err)
	}
	fmt.Printf("canary share of errors %.2f (null %.2f): p %.2g, fail %v at look %d\n",
		res.Last.Share, res.Last.NullShare, res.PValue, res.Reject, res.RejectedAt)
	// Output:
	// canary share of errors 0.65 (null 0.10): p 1.1e-06, fail true at look 1
}

// The canary judge on latency: Prometheus buckets of both versions.
func ExampleMannWhitney() {
	le := []float64{0.05, 0.1, 0.2, 0.5, math.Inf(1)}
	cumulative := func(counts ...float64) []stats.Bucket {
		b := make([]stats.Bucket, len(le))
		for i := range le {
			b[i] = stats.Bucket{UpperBound: le[i], CumulativeCount: counts[i]}
		}
		return b
	}
	canary, err := stats.HistogramFromCumulative(cumulative(10, 130, 230, 270, 280))
	if err != nil {
		panic(err)
	}
	stable, err := stats.HistogramFromCumulative(cumulative(400, 2400, 2750, 2830, 2840))
	if err != nil {
		panic(err)
	}
	r, err := stats.MannWhitney(canary, stable)
	if err != nil {
		panic(err)
	}
	fmt.Printf("P(canary slower) %.2f, one-sided p %.2g\n", r.Effect, r.PGreater)

	_, err = stats.HistogramFromCumulative(cumulative(10, 130, 120, 270, 280))
	fmt.Println(errors.Is(err, stats.ErrInvalidInput), err)
	// Output:
	// P(canary slower) 0.71, one-sided p 9.2e-47
	// true invalid input: bucket le=0.2: cumulative count 120 is below 130 of the bucket before: buckets must be non-decreasing
}
