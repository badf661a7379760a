package abtest

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/ml-platform/platform/internal/stats"
)

// Simulations of whole experiments through Decide, the verdict an operator
// reads: random assignment by the split, feedback drawn from true
// accuracies, requests with 5xx and slow ones for the guardrails, and the
// sample-ratio check, all at every look. An experiment stops at its first
// final verdict (or a sample-ratio mismatch), as an operator would. Fixed
// seeds; every rate is reported with its binomial standard error and every
// bound leaves at least three of them.

func binomialSE(rate float64, runs int) float64 { return math.Sqrt(rate * (1 - rate) / float64(runs)) }

// simDesign is the platform's default experiment: alpha 0.05, power 0.8, a
// 3-point lift on 0.80, 50/50, guardrails at a 50% relative margin.
var simDesign = Design{Alpha: 0.05, Power: 0.8, MDE: 0.03, Baseline: 0.80, Split: [2]float64{50, 50},
	Guardrails: Guardrails{ErrorMargin: 0.5, LatencyMargin: 0.5, LatencyThreshold: 0.2}}

// world is the truth of one simulated experiment.
type world struct {
	accuracy  [2]float64 // control, treatment
	errors    [2]float64 // 5xx rate per request
	slow      [2]float64 // share of requests slower than the threshold
	share     float64    // the treatment's true share of assignments
	requests  float64    // requests per feedback event
	looks     int
	plannedTo float64 // total feedback events at the last look
}

func defaultWorld(pc, pt float64) world {
	return world{accuracy: [2]float64{pc, pt}, errors: [2]float64{0.001, 0.001}, slow: [2]float64{0.02, 0.02},
		share: 0.5, requests: 4, looks: 20}
}

type sim struct {
	rng *rand.Rand
	src rand.Source
}

func newSim(seed uint64) sim {
	src := rand.NewPCG(seed, 0xab7e57)
	return sim{rng: rand.New(src), src: src}
}

func (s sim) binomial(n int64, p float64) int64 {
	if n <= 0 || p <= 0 {
		return 0
	}
	return int64(distuv.Binomial{N: float64(n), P: p, Src: s.src}.Rand())
}

// outcome of one simulated experiment.
type outcome struct {
	verdict Verdict
	look    int  // the look it stopped at
	zPeeked bool // a fixed-horizon z-test looked at every look would have declared a winner
}

// run plays one experiment: at each look, new feedback events are assigned
// by the true share, their outcomes drawn by the arm's accuracy, and the
// arm's requests, errors and slow requests drawn around them.
func (s sim) run(t *testing.T, d Design, w world, total float64) outcome {
	t.Helper()
	a, err := NewAnalyzer(d)
	if err != nil {
		t.Fatal(err)
	}
	var looks []Look
	var cur Look
	seen := int64(0)
	out := outcome{verdict: KeepRunning}
	for k := 1; k <= w.looks; k++ {
		next := int64(math.Round(total * float64(k) / float64(w.looks)))
		n := next - seen
		seen = next
		nt := s.binomial(n, w.share)
		for arm, m := range [2]int64{n - nt, nt} {
			a := &cur.Control
			if arm == 1 {
				a = &cur.Treatment
			}
			a.Feedback += m
			a.Correct += s.binomial(m, w.accuracy[arm])
			req := int64(math.Round(float64(m) * w.requests))
			a.Requests += req
			a.Errors += s.binomial(req, w.errors[arm])
			a.Slow += s.binomial(req, w.slow[arm])
		}
		looks = append(looks, cur)
		if !out.zPeeked && cur.Control.Feedback > 0 && cur.Treatment.Feedback > 0 {
			z, err := stats.TwoProportionZTest(stats.Proportion{Successes: cur.Treatment.Correct, Trials: cur.Treatment.Feedback},
				stats.Proportion{Successes: cur.Control.Correct, Trials: cur.Control.Feedback}, d.Alpha)
			out.zPeeked = err == nil && z.PValue <= d.Alpha
		}
		if out.verdict.Final() || out.verdict == SampleRatioMismatch {
			continue // stopped; the peeked z-test goes on to the end
		}
		r, err := a.Decide(looks, Options{})
		if err != nil {
			t.Fatal(err)
		}
		out.verdict, out.look = r.Verdict, k
	}
	return out
}

type tally map[Verdict]int

func (c tally) rate(v Verdict, runs int) float64 { return float64(c[v]) / float64(runs) }

func (s sim) many(t *testing.T, d Design, w world, runs int) (tally, int, float64) {
	t.Helper()
	plan, err := d.PlanFor(d.Baseline)
	if err != nil {
		t.Fatal(err)
	}
	total := plan.Total()
	if w.plannedTo > 0 {
		total = w.plannedTo
	}
	got := tally{}
	zWins, lookSum := 0, 0
	for range runs {
		o := s.run(t, d, w, total)
		got[o.verdict]++
		if o.zPeeked {
			zWins++
		}
		if o.verdict == TreatmentWins {
			lookSum += o.look
		}
	}
	return got, zWins, float64(lookSum) / math.Max(1, float64(got[TreatmentWins]))
}

// TestAAFalseWinners: 2,000 A/A experiments (accuracy 0.80, 0.1% 5xx and 2%
// slow requests in both arms, assignment 50/50), each looked at 20 times up
// to the planned sample. A winner either way (a false one) is declared in at
// most alpha + 0.01 of them. The planted check: the same experiments read by
// a fixed-horizon z-test peeked at the same looks must fail that bound.
func TestAAFalseWinners(t *testing.T) {
	t.Parallel()
	const runs = 2000
	got, zWins, _ := newSim(11).many(t, simDesign, defaultWorld(0.80, 0.80), runs)
	falseWins := got[TreatmentWins] + got[ControlWins]
	r := float64(falseWins) / runs
	t.Logf("A/A, %d experiments x 20 looks, alpha %.2f: false winners %.4f (SE %.4f; treatment %d, control %d), no difference %.4f, keep running at the end %.4f, sample-ratio mismatch %.4f; fixed-horizon z-test peeked: %.4f",
		runs, simDesign.Alpha, r, binomialSE(r, runs), got[TreatmentWins], got[ControlWins], got.rate(NoDifference, runs),
		got.rate(KeepRunning, runs), got.rate(SampleRatioMismatch, runs), float64(zWins)/runs)
	if bound := simDesign.Alpha + 0.01; r > bound {
		t.Errorf("false winners in %.4f of A/A experiments, want <= %.2f", r, bound)
	}
	if z := float64(zWins) / runs; z <= simDesign.Alpha+0.01 {
		t.Errorf("planted: the peeked z-test declares false winners in only %.4f: the A/A bound could not catch a peeking verdict", z)
	}
	// At the planned sample the verdict is final, except where a false lead
	// on accuracy waits for a guardrail to clear.
	if r := got.rate(KeepRunning, runs); r > 0.01 {
		t.Errorf("%.4f of A/A experiments still keep running at the planned sample", r)
	}
}

// TestLiftFoundWithPlannedPower: a true 3-point lift (0.80 -> 0.83),
// planned at power 0.8, run 1,000 times with 20 looks: treatment_wins in at
// least the planned 0.8 less three standard errors. The planted check: the
// same experiments stopped at half the plan must fail it.
func TestLiftFoundWithPlannedPower(t *testing.T) {
	t.Parallel()
	const runs = 1000
	plan, err := simDesign.PlanFor(simDesign.Baseline)
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(12)
	got, _, meanLook := s.many(t, simDesign, defaultWorld(0.80, 0.83), runs)
	p := got.rate(TreatmentWins, runs)
	se := binomialSE(simDesign.Power, runs)
	t.Logf("lift 0.80 -> 0.83, plan %.0f + %.0f feedback events (fixed-horizon z-test: %.0f per arm), %d runs x 20 looks: treatment wins %.3f (planned %.1f, SE %.4f), mean look of the win %.1f; control wins %d, no difference %d, SRM %d",
		plan.Control, plan.Treatment, plan.FixedHorizonControl, runs, p, simDesign.Power, se, meanLook, got[ControlWins], got[NoDifference], got[SampleRatioMismatch])
	if p < simDesign.Power-3*se {
		t.Errorf("treatment wins in %.3f of runs, want >= %.3f", p, simDesign.Power-3*se)
	}
	w := defaultWorld(0.80, 0.83)
	w.plannedTo = plan.Total() / 2
	half, _, _ := s.many(t, simDesign, w, runs)
	h := half.rate(TreatmentWins, runs)
	t.Logf("planted: stopped at half the plan, treatment wins %.3f", h)
	if h >= simDesign.Power-3*se {
		t.Errorf("at half the plan the lift is found in %.3f of runs: the power check could not catch an undersized plan", h)
	}
}

// TestGuardrailStopsBetterButFailingTreatment: the treatment is more
// accurate (0.86 against 0.80) but answers 1% 5xx against 0.1%, or has 6%
// slow requests against 2%. It must never win; the verdict is control_wins.
func TestGuardrailStopsBetterButFailingTreatment(t *testing.T) {
	t.Parallel()
	const runs = 300
	for _, c := range []struct {
		name string
		bad  func(*world)
	}{
		{"5xx 1% vs 0.1%", func(w *world) { w.errors[1] = 0.01 }},
		{"slow 6% vs 2%", func(w *world) { w.slow[1] = 0.06 }},
	} {
		w := defaultWorld(0.80, 0.86)
		c.bad(&w)
		got, _, _ := newSim(13).many(t, simDesign, w, runs)
		t.Logf("%s, accuracy 0.80 -> 0.86: control wins %.3f, treatment wins %.3f", c.name, got.rate(ControlWins, runs), got.rate(TreatmentWins, runs))
		if got[TreatmentWins] > 0 {
			t.Errorf("%s: the treatment won %d of %d runs despite the guardrail", c.name, got[TreatmentWins], runs)
		}
		if r := got.rate(ControlWins, runs); r < 0.95 {
			t.Errorf("%s: control wins in only %.3f of runs", c.name, r)
		}
	}
}

// TestSRMFlagsImbalance: assignments at 60/40 under a 50/50 design are
// flagged, and never read as a winner, whatever the accuracies.
func TestSRMFlagsImbalance(t *testing.T) {
	t.Parallel()
	const runs = 300
	w := defaultWorld(0.80, 0.86)
	w.share = 0.4
	got, _, _ := newSim(14).many(t, simDesign, w, runs)
	t.Logf("60/40 under 50/50: sample-ratio mismatch %.3f, treatment wins %.3f", got.rate(SampleRatioMismatch, runs), got.rate(TreatmentWins, runs))
	if got[SampleRatioMismatch] != runs {
		t.Errorf("a 60/40 split was flagged in %d of %d runs", got[SampleRatioMismatch], runs)
	}
}
