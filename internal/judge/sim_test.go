package judge

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/ml-platform/platform/internal/stats"
	"github.com/ml-platform/platform/internal/telemetry"
)

// Simulations of the judge on the traffic the brief names: ~50 req/s in
// all (Poisson per minute), the canary at 10% request by request, one look
// a minute. Each run feeds Evaluate, the function GET /v1/judge answers
// with, the cumulative counts a real run would rebuild. Rates are reported
// with their binomial standard error sqrt(r (1 - r) / runs); every bound
// leaves at least three of them from the measured figure unless the brief
// sets it.

const (
	simRequestsPerMinute = 50 * 60
	simCanaryShare       = 0.10
	simStableErrorRate   = 0.001
	simBaselineMedian    = 0.005 // seconds: ml-inference answers in a few ms
	simBaselineSigma     = 0.5   // of ln(latency)
)

func binomialSE(rate float64, runs int) float64 { return math.Sqrt(rate * (1 - rate) / float64(runs)) }

type simulator struct {
	src rand.Source
}

func newSimulator(seed uint64) *simulator { return &simulator{src: rand.NewPCG(seed, 0x1d9e)} }

func (s *simulator) binomial(n int64, p float64) int64 {
	if n == 0 || p <= 0 {
		return 0
	}
	if p >= 1 {
		return n
	}
	return int64(distuv.Binomial{N: float64(n), P: p, Src: s.src}.Rand())
}

func (s *simulator) poisson(mean float64) int64 {
	return int64(distuv.Poisson{Lambda: mean, Src: s.src}.Rand())
}

// latency is a latency distribution: a lognormal plus a fixed delay.
type latency struct {
	median, sigma, delay float64
}

var baseline = latency{median: simBaselineMedian, sigma: simBaselineSigma}

func (l latency) cdf(x float64) float64 {
	if x <= l.delay {
		return 0
	}
	return distuv.UnitNormal.CDF((math.Log(x-l.delay) - math.Log(l.median)) / l.sigma)
}

func (l latency) mean() float64 { return l.delay + l.median*math.Exp(l.sigma*l.sigma/2) }

// bounds are ml-inference's latency buckets and +Inf.
var bounds = append(append([]float64(nil), telemetry.LatencyBuckets...), math.Inf(1))

// observe draws n latencies into per-bucket counts (a multinomial, by
// conditional binomials) and adds them to c's cumulative buckets.
func (s *simulator) observe(c *Counts, n int64, l latency) {
	if c.Buckets == nil {
		c.Buckets = make([]stats.Bucket, len(bounds))
		for i, b := range bounds {
			c.Buckets[i].UpperBound = b
		}
	}
	left, below := n, 0.0
	var cum int64
	for i, b := range bounds {
		p := 1.0
		if !math.IsInf(b, 1) {
			p = l.cdf(b)
		}
		k := left
		if i < len(bounds)-1 {
			k = s.binomial(left, (p-below)/(1-below))
		}
		left -= k
		below = p
		cum += k
		c.Buckets[i].CumulativeCount += float64(cum)
	}
	c.LatencySum += float64(n) * l.mean()
}

// arms is what one simulated canary does: each arm's error rate and
// latency, the canary's traffic share, and the requests a minute.
type arms struct {
	canaryErrors, stableErrors   float64
	canaryLatency, stableLatency latency
	share                        float64
	perMinute                    float64
}

var aa = arms{canaryErrors: simStableErrorRate, stableErrors: simStableErrorRate,
	canaryLatency: baseline, stableLatency: baseline, share: simCanaryShare, perMinute: simRequestsPerMinute}

// run draws looks one-minute looks of cumulative counts.
func (s *simulator) run(a arms, looks int) Looks {
	start := time.Unix(1_700_000_040, 0).UTC()
	out := Looks{Began: start}
	var c, st Counts
	for k := 1; k <= looks; k++ {
		reqs := s.poisson(a.perMinute)
		toCanary := s.binomial(reqs, a.share)
		c.Requests += toCanary
		st.Requests += reqs - toCanary
		c.Errors += s.binomial(toCanary, a.canaryErrors)
		st.Errors += s.binomial(reqs-toCanary, a.stableErrors)
		s.observe(&c, toCanary, a.canaryLatency)
		s.observe(&st, reqs-toCanary, a.stableLatency)
		out.Looks = append(out.Looks, Look{At: start.Add(time.Duration(k) * time.Minute), Canary: clone(c), Stable: clone(st)})
	}
	return out
}

func clone(c Counts) Counts {
	c.Buckets = append([]stats.Bucket(nil), c.Buckets...)
	return c
}

// outcome tallies a simulation: how often each metric and the whole
// verdict failed, and how often within two looks.
type outcome struct {
	runs                                int
	errorsFailed, latencyFailed, failed int
	errorsWithin2, latencyWithin2       int
	verdicts                            map[Verdict]int
}

func (o outcome) rate(n int) float64 { return float64(n) / float64(o.runs) }

// simulate runs the judge on runs canaries of looks looks each, judging
// every prefix of looks (what Argo Rollouts' measurements at each interval
// would see) through the last.
func simulate(t *testing.T, seed uint64, a arms, runs, looks int, p Policy) outcome {
	t.Helper()
	s := newSimulator(seed)
	o := outcome{runs: runs, verdicts: map[Verdict]int{}}
	for range runs {
		l := s.run(a, looks)
		// The judge is stateless and every look's figures depend only on
		// the looks up to it, so the full run's result says when each
		// metric first failed.
		res := Evaluate(l, looks, p)
		o.verdicts[res.Verdict]++
		e, lat := res.Metrics[0], res.Metrics[1]
		if e.Verdict == Fail {
			o.errorsFailed++
			if e.Look <= 2 {
				o.errorsWithin2++
			}
		}
		if lat.Verdict == Fail {
			o.latencyFailed++
			if lat.Look <= 2 {
				o.latencyWithin2++
			}
		}
		if res.Verdict == Fail {
			o.failed++
		}
	}
	return o
}

func TestCalibrate(t *testing.T) {
	for _, margin := range []float64{0.25} {
		p := DefaultPolicy
		p.ErrorMargin = margin
		bad := aa
		bad.canaryErrors = 0.02
		o := simulate(t, 4, bad, 2000, 20, p)
		t.Logf("margin %v: 2%% canary failed %.4f, within 2 looks %.4f", margin, o.rate(o.errorsFailed), o.rate(o.errorsWithin2))
		o = simulate(t, 3, aa, 2000, 20, p)
		t.Logf("margin %v: A/A errors failed %.4f latency %.4f combined %.4f %v", margin, o.rate(o.errorsFailed), o.rate(o.latencyFailed), o.rate(o.failed), o.verdicts)
	}
}

func TestCalibrateLatency(t *testing.T) {
	p := DefaultPolicy
	for _, c := range []struct {
		name string
		l    latency
	}{
		{"+50ms", latency{median: simBaselineMedian, sigma: simBaselineSigma, delay: 0.05}},
		{"+5ms", latency{median: simBaselineMedian, sigma: simBaselineSigma, delay: 0.005}},
		{"+2ms", latency{median: simBaselineMedian, sigma: simBaselineSigma, delay: 0.002}},
		{"+1ms", latency{median: simBaselineMedian, sigma: simBaselineSigma, delay: 0.001}},
		{"x1.1", latency{median: simBaselineMedian * 1.1, sigma: simBaselineSigma}},
		{"x1.25", latency{median: simBaselineMedian * 1.25, sigma: simBaselineSigma}},
		{"x1.5", latency{median: simBaselineMedian * 1.5, sigma: simBaselineSigma}},
		{"x2", latency{median: simBaselineMedian * 2, sigma: simBaselineSigma}},
	} {
		a := aa
		a.canaryLatency = c.l
		o := simulate(t, 5, a, 500, 20, p)
		t.Logf("%s: latency failed %.4f, within 2 looks %.4f", c.name, o.rate(o.latencyFailed), o.rate(o.latencyWithin2))
	}
	planted := p
	planted.LatencyTolerance = 0.5
	o := simulate(t, 3, aa, 2000, 20, planted)
	t.Logf("no gate: A/A latency failed %.4f", o.rate(o.latencyFailed))
}
