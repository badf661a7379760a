package judge

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/stats"
	"github.com/ml-platform/platform/internal/telemetry"
	"github.com/ml-platform/platform/internal/vmtest"
)

// The judge against a real VictoriaMetrics: pods' counters, written with
// known traffic every 15 s (a scrape interval) through the Prometheus text
// import, read back by GET /v1/judge over real HTTP. The counts the judge
// reports must be the traffic the pods served (nothing else: not probes,
// not another namespace, not an older ReplicaSet, across a pod restart and
// a pod that joins late), its figures those of Evaluate on that traffic,
// and its verdicts the expected ones. The planted failure: the same
// namespaces judged with canary and stable swapped must flip each verdict.

const (
	vmCanary = "c0ffee123" // the same hashes in every namespace: only the
	vmStable = "5ab1e4567" // namespace matcher keeps them apart
	vmOther  = "01d4e5b78" // an older ReplicaSet, in the same namespace
	scrape   = 15 * time.Second
)

// vmBounds are ml-inference's latency buckets and +Inf.
var vmBounds = append(append([]float64(nil), telemetry.LatencyBuckets...), math.Inf(1))

// served is what one pod answered in one scrape interval: requests, of them
// 5xx, and the requests per latency bucket (vmBounds), each taking the
// bucket's lower half-way point to the sum.
type served struct {
	requests, errors int64
	latency          []int64
}

// podPlan is one pod's life: it starts (its counters at 0) just after
// start, restarts just after restart if set, and serves at each scrape.
type podPlan struct {
	name, hash     string
	start, restart time.Time
	serve          func(scrape int) served
}

// spread puts n requests into buckets by the given weights (per mille),
// the remainder into the first.
func spread(n int64, perMille map[int]int64) []int64 {
	out := make([]int64, len(vmBounds))
	var used int64
	for i, w := range perMille {
		out[i] = n * w / 1000
		used += out[i]
	}
	for i := range out {
		if perMille[i] > 0 {
			out[i] += n - used
			break
		}
	}
	return out
}

// Bucket indices of vmBounds: (0.0025, 0.005], (0.005, 0.01], (0.01, 0.025],
// (0.05, 0.1].
const b5ms, b10ms, b25ms, b100ms = 2, 3, 4, 6

var fast = map[int]int64{b5ms: 400, b10ms: 500, b25ms: 100} // ~5 ms
var slow = map[int]int64{b100ms: 1000}                      // +50 ms

func midpoint(i int) float64 {
	lo := 0.0
	if i > 0 {
		lo = vmBounds[i-1]
	}
	if math.IsInf(vmBounds[i], 1) {
		return 2 * lo
	}
	return (lo + vmBounds[i]) / 2
}

// every returns a serve function: n requests each scrape, one 5xx every
// errEvery scrapes (0: none), latencies spread by dist.
func every(n int64, errEvery int, dist map[int]int64) func(int) served {
	return func(k int) served {
		s := served{requests: n, latency: spread(n, dist)}
		if errEvery > 0 && k%errEvery == 0 {
			s.errors = 1
		}
		return s
	}
}

// errorsPer returns a serve function with e 5xx in every scrape.
func errorsPer(n, e int64, dist map[int]int64) func(int) served {
	return func(int) served { return served{requests: n, errors: e, latency: spread(n, dist)} }
}

// scenario is one namespace's pods.
type scenario struct {
	namespace string
	pods      []podPlan
}

// write renders every pod's series from first to last (scrape instants)
// in the Prometheus text format, with the labels vmagent adds, and the
// noise the judge must not count: probes and scrapes on other endpoints.
func (s scenario) write(b *strings.Builder, first, last time.Time) {
	for _, p := range s.pods {
		var req, errs int64
		var sum float64
		buckets := make([]int64, len(vmBounds))
		var probes int64
		k := 0
		for at := p.start.Truncate(scrape).Add(scrape); !at.After(last); at = at.Add(scrape) {
			if !p.restart.IsZero() && at.Add(-scrape).Before(p.restart) && !at.Before(p.restart) {
				req, errs, sum, probes = 0, 0, 0, 0
				clear(buckets)
			}
			sv := p.serve(k)
			k++
			req += sv.requests - sv.errors
			errs += sv.errors
			var cum int64
			for i, n := range sv.latency {
				buckets[i] += n
				sum += float64(n) * midpoint(i)
			}
			probes += 3
			if at.Before(first) {
				continue
			}
			ms := at.UnixMilli()
			labels := fmt.Sprintf(`namespace=%q,pod=%q,container="ml-inference",app="ml-inference",env="test",rollouts_pod_template_hash=%q,version="v2"`, s.namespace, p.name, p.hash)
			fmt.Fprintf(b, "inference_requests_total{%s,endpoint=\"/predict\",status=\"200\"} %d %d\n", labels, req, ms)
			fmt.Fprintf(b, "inference_requests_total{%s,endpoint=\"/predict\",status=\"500\"} %d %d\n", labels, errs, ms)
			fmt.Fprintf(b, "inference_requests_total{%s,endpoint=\"/metrics\",status=\"200\"} %d %d\n", labels, probes, ms)
			fmt.Fprintf(b, "inference_requests_total{%s,endpoint=\"/ready\",status=\"503\"} %d %d\n", labels, probes, ms)
			for i, le := range vmBounds {
				cum += buckets[i]
				fmt.Fprintf(b, "inference_request_duration_seconds_bucket{%s,endpoint=\"/predict\",le=%q} %d %d\n", labels, leText(le), cum, ms)
				fmt.Fprintf(b, "inference_request_duration_seconds_bucket{%s,endpoint=\"/metrics\",le=%q} %d %d\n", labels, leText(le), probes, ms)
			}
			fmt.Fprintf(b, "inference_request_duration_seconds_sum{%s,endpoint=\"/predict\"} %s %d\n", labels, fmt.Sprint(sum), ms)
			fmt.Fprintf(b, "inference_request_duration_seconds_count{%s,endpoint=\"/predict\"} %d %d\n", labels, cum, ms)
		}
	}
}

func leText(le float64) string {
	if math.IsInf(le, 1) {
		return "+Inf"
	}
	return fmt.Sprint(le)
}

// truth is what the pods of one arm served in (from, to].
func (s scenario) truth(hash string, from, to time.Time) Counts {
	c := Counts{Buckets: make([]stats.Bucket, len(vmBounds))}
	for i, le := range vmBounds {
		c.Buckets[i].UpperBound = le
	}
	for _, p := range s.pods {
		if p.hash != hash {
			continue
		}
		k := 0
		for at := p.start.Truncate(scrape).Add(scrape); !at.After(to); at = at.Add(scrape) {
			sv := p.serve(k)
			k++
			if !at.After(from) {
				continue
			}
			c.Requests += sv.requests
			c.Errors += sv.errors
			var cum int64
			for i, n := range sv.latency {
				cum += n
				c.Buckets[i].CumulativeCount += float64(cum)
				c.LatencySum += float64(n) * midpoint(i)
			}
		}
	}
	return c
}

func TestJudgeAgainstVictoriaMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts VictoriaMetrics")
	}
	vm := vmtest.Start(t)

	// A fixed "now", 30 s past a minute and in the past, so that every
	// sample is written before the judge reads and the looks are known.
	const window, step = 10 * time.Minute, time.Minute
	now := time.Now().Truncate(time.Minute).Add(-time.Minute + 30*time.Second)
	grid := GridFor(now, window, step)
	start := grid.Start
	at := func(d time.Duration) time.Time { return start.Add(d) }
	old := at(-30 * time.Minute)

	stablePods := func(errEvery int, dist map[int]int64) []podPlan {
		return []podPlan{
			{name: "ml-inference-" + vmStable + "-a", hash: vmStable, start: old, serve: every(225, errEvery, dist)},
			// Restarts at +6m05s: its counters fall to 0.
			{name: "ml-inference-" + vmStable + "-b", hash: vmStable, start: old, restart: at(6*time.Minute + 5*time.Second), serve: every(225, errEvery, dist)},
			{name: "ml-inference-" + vmStable + "-c", hash: vmStable, start: old, serve: every(225, errEvery, dist)},
		}
	}
	canaryPods := func(serve func(int) served) []podPlan {
		return []podPlan{
			// Starts at +3m05s; a second pod joins at +5m05s.
			{name: "ml-inference-" + vmCanary + "-a", hash: vmCanary, start: at(3*time.Minute + 5*time.Second), serve: serve},
			{name: "ml-inference-" + vmCanary + "-b", hash: vmCanary, start: at(5*time.Minute + 5*time.Second), serve: serve},
		}
	}
	older := podPlan{name: "ml-inference-" + vmOther + "-a", hash: vmOther, start: old, serve: errorsPer(100, 50, slow)}
	scenarios := map[string]scenario{
		// 2 of 37 per scrape (5.4%) against 1 in 900 (0.11%).
		"judge-errors": {"judge-errors", append(append(stablePods(4, fast), canaryPods(errorsPer(37, 2, fast))...), older)},
		// +50 ms, no 5xx anywhere.
		"judge-latency": {"judge-latency", append(append(stablePods(0, fast), canaryPods(every(37, 0, slow))...), older)},
		// The canary like its stable: 1 in 888 against 1 in 900.
		"judge-good": {"judge-good", append(append(stablePods(4, fast), canaryPods(every(37, 24, fast))...), older)},
	}
	var text strings.Builder
	for _, name := range []string{"judge-errors", "judge-latency", "judge-good"} {
		scenarios[name].write(&text, start.Add(-6*time.Minute), now)
	}
	vm.Import(t, text.String())

	namespaces := []string{"judge-errors", "judge-latency", "judge-good"}
	j := startJudge(t, vm.URL, namespaces, func() time.Time { return now })
	if status, _, body := j.get(t, "GET", "/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz against VictoriaMetrics: %d %s", status, body)
	}

	judge := func(ns, canary, stable string) Result {
		t.Helper()
		q := url.Values{"namespace": {ns}, "canary": {canary}, "stable": {stable}, "window": {"10m"}, "step": {"1m"}}
		status, _, body := j.get(t, "GET", "/v1/judge?"+q.Encode())
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", ns, status, body)
		}
		var r Result
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("%s: %v: %s", ns, err, body)
		}
		return r
	}
	for _, c := range []struct {
		ns                     string
		swapped                bool
		verdict, errs, latency Verdict
	}{
		{"judge-errors", false, Fail, Fail, Pass},
		{"judge-latency", false, Fail, Pass, Fail},
		{"judge-good", false, Pass, Pass, Pass},
		// Planted: the labels swapped. The erroring pods are now "stable",
		// above the ceiling: inconclusive. The slow pods are "stable": the
		// canary is faster, a pass.
		{"judge-errors", true, Inconclusive, Inconclusive, Inconclusive},
		{"judge-latency", true, Pass, Pass, Pass},
	} {
		canary, stable := vmCanary, vmStable
		if c.swapped {
			canary, stable = stable, canary
		}
		name := fmt.Sprintf("%s (canary %s, stable %s)", c.ns, canary, stable)
		got := judge(c.ns, canary, stable)
		if got.Verdict != c.verdict || got.Metrics[0].Verdict != c.errs || got.Metrics[1].Verdict != c.latency {
			t.Errorf("%s: %s (errors %s, latency %s), want %s (%s, %s): %s", name, got.Verdict, got.Metrics[0].Verdict, got.Metrics[1].Verdict,
				c.verdict, c.errs, c.latency, got.Reason)
		}

		// What the pods served, from the instant before the canary's
		// first sample (+3m; the grid's start when the "canary" is the
		// stable's old pods) on: the judge must report exactly that.
		s := scenarios[c.ns]
		first := 3
		if c.swapped {
			first = 0
		}
		began := grid.At(first)
		var want Looks
		want.Began = began
		for i := first + 1; i <= grid.MaxLooks(); i++ {
			want.Looks = append(want.Looks, Look{At: grid.At(i), Canary: s.truth(canary, began, grid.At(i)), Stable: s.truth(stable, began, grid.At(i))})
		}
		expected := Evaluate(want, grid.MaxLooks(), DefaultPolicy)
		if err := sameResult(got, expected); err != nil {
			t.Errorf("%s: the judge's answer is not that of the traffic served: %v", name, err)
		}
		t.Logf("%s: %s after %d looks: %s", name, got.Verdict, got.Looks, got.Reason)
	}

	// The verdicts are metrics.
	for ns, verdict := range map[string]string{"judge-errors": "fail", "judge-latency": "fail", "judge-good": "pass"} {
		if n := labelledValue(t, j.metrics, "judge_verdicts_total", map[string]string{"namespace": ns, "verdict": verdict}); n < 1 {
			t.Errorf("judge_verdicts_total{namespace=%q,verdict=%q} = %v, want >= 1", ns, verdict, n)
		}
	}
	if n := labelledValue(t, j.metrics, "judge_samples", map[string]string{"namespace": "judge-good", "metric": "errors", "arm": "canary"}); n < 1000 {
		t.Errorf("judge_samples{namespace=judge-good,metric=errors,arm=canary} = %v, want the canary's requests", n)
	}
}

// TestVictoriaMetricsErrorIsA502: a VictoriaMetrics that refuses the query
// (here: it may read one sample per query) makes the judge answer 502 with the
// backend's reason, never a verdict.
func TestVictoriaMetricsErrorIsA502(t *testing.T) {
	if testing.Short() {
		t.Skip("starts VictoriaMetrics")
	}
	vm := vmtest.Start(t, "-search.maxSamplesPerQuery=1")
	now := time.Now()
	var text strings.Builder
	for i, hash := range []string{vmCanary, vmStable} {
		for s := range 3 {
			fmt.Fprintf(&text, "inference_requests_total{namespace=\"judge-errors\",pod=\"p%d\",rollouts_pod_template_hash=%q,endpoint=\"/predict\",status=\"200\"} %d %d\n",
				i, hash, 10*(s+1), now.Add(-time.Duration(3-s)*time.Minute).UnixMilli())
			fmt.Fprintf(&text, "inference_requests_total{namespace=\"judge-errors\",pod=\"p%d\",rollouts_pod_template_hash=%q,endpoint=\"/predict\",status=\"500\"} %d %d\n",
				i, hash, s, now.Add(-time.Duration(3-s)*time.Minute).UnixMilli())
		}
	}
	vm.Import(t, text.String())
	j := startJudge(t, vm.URL, []string{"judge-errors"}, nil)
	status, _, body := j.get(t, "GET", "/v1/judge?namespace=judge-errors&canary="+vmCanary+"&stable="+vmStable)
	code, msg, _ := apiError(t, body)
	if status != http.StatusBadGateway || code != "backend_unavailable" || !strings.Contains(msg, "maxSamplesPerQuery") {
		t.Errorf("%d %s, want a 502 with VictoriaMetrics' reason", status, body)
	}
	if n := counterValue(t, j.metrics, "judge_verdicts_total", "namespace", "judge-errors"); n != 0 {
		t.Errorf("a refused query was counted as %v verdicts", n)
	}
}

// labelledValue is the value of the family's sample with exactly these
// labels.
func labelledValue(t *testing.T, m *Metrics, family string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, s := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if len(got) == len(labels) && func() bool {
				for k, v := range labels {
					if got[k] != v {
						return false
					}
				}
				return true
			}() {
				return s.GetCounter().GetValue() + s.GetGauge().GetValue() + float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return math.NaN()
}

// sameResult compares the judge's answer with the expected one: verdicts,
// counts and looks exactly, figures to 1e-12 (relative; the latency sums
// are added in another order).
func sameResult(got, want Result) error {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if got.Verdict != want.Verdict || got.Looks != want.Looks || got.MaxLooks != want.MaxLooks {
		fail("%s over %d/%d looks, want %s over %d/%d", got.Verdict, got.Looks, got.MaxLooks, want.Verdict, want.Looks, want.MaxLooks)
	}
	for _, p := range []struct {
		name      string
		got, want *time.Time
	}{{"began", got.Began, want.Began}, {"last look", got.LastLook, want.LastLook}} {
		if (p.got == nil) != (p.want == nil) || (p.got != nil && !p.got.Equal(*p.want)) {
			fail("%s %v, want %v", p.name, p.got, p.want)
		}
	}
	for i, m := range got.Metrics {
		w := want.Metrics[i]
		if m.Name != w.Name || m.Verdict != w.Verdict || m.NCanary != w.NCanary || m.NStable != w.NStable || m.Look != w.Look {
			fail("%s: %s n %d/%d look %d; want %s %s n %d/%d look %d", m.Name, m.Verdict, m.NCanary, m.NStable, m.Look, w.Name, w.Verdict, w.NCanary, w.NStable, w.Look)
		}
		for _, f := range []struct {
			name      string
			got, want *float64
		}{{"canary", m.Canary, w.Canary}, {"stable", m.Stable, w.Stable}, {"effect", m.Effect, w.Effect}, {"ci_low", m.CILow, w.CILow},
			{"ci_high", m.CIHigh, w.CIHigh}, {"p_value", &m.PValue, &w.PValue}} {
			switch {
			case (f.got == nil) != (f.want == nil):
				fail("%s.%s %v, want %v", m.Name, f.name, show(f.got), show(f.want))
			case f.got != nil && math.Abs(*f.got-*f.want) > 1e-12*math.Max(math.Abs(*f.want), 1e-300):
				fail("%s.%s %v, want %v", m.Name, f.name, *f.got, *f.want)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(slices.Compact(errs), "; "))
	}
	return nil
}
