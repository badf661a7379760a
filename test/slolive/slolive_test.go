// Package slolive is proof 2 of the SLO rules: a live run. The promtool
// scenarios (test/rules) prove the alert maths on synthetic series; this test
// proves the whole chain on real processes. The real ml-inference binary
// (built with its test-only fault switch, -tags faultinject) serves real HTTP
// load; VictoriaMetrics scrapes its /metrics; vmalert evaluates the
// committed, generated rules file against VictoriaMetrics and writes the
// recording rules back to it. The test injects 5xx responses and reads the
// results where an operator would: VictoriaMetrics' query API and vmalert's
// alerts API.
//
// Two ml-inference processes stand for two namespaces, because every SLO sums
// by namespace and, within a test that lasts a minute, every rule window (5m
// to 30d) covers the whole run, so phases on one namespace would blend:
//
//   - ml-inference-partial fails exactly 20% of /predict requests from its
//     first request. Its SLI recording rules must read 0.20 (within 0.02), and
//     it must page: 20% burns the 99.9% budget 200 times too fast (the page
//     needs 14.4 times on 5m and 1h, or 6 times on 30m and 6h).
//   - ml-inference-outage is healthy for the first phase; no alert may be
//     pending or firing for it meanwhile, although the other namespace pages
//     (an incident in one environment must never page another). It also gets
//     7 hours of healthy history, imported into VictoriaMetrics
//     (importHistory), so its 1h and 6h windows hold what they would in
//     production: the outage must burn through an hour of successes before
//     the 1h SLI crosses the page threshold. Then it fails every request; the
//     availability page must fire within 2 minutes of the first failed
//     request. That time, the MTTD, is printed as a SLO_MTTD line.
//
// A planted rules file, evaluated by a second vmalert on the same data,
// proves each check can fail: its availability SLI counts 2xx as errors (the
// SLI check must report a mismatch, the quiet check a page on the healthy
// namespace, the detection check an alert already active before the outage)
// and its prediction-error page thresholds are impossible (the detection
// check must report no page).
//
// The pipeline's timings are compressed for `make test` (scrape 1 s,
// evaluation 2 s, evaluation delay 1 s). SLOLIVE_TIMINGS=production runs the
// same phases with the shipped ones instead, read from the rendered
// manifests of infrastructure/base/observability (vmagent's scrape_interval,
// vmalert's -evaluationInterval and -rule.evalDelay, VictoriaMetrics'
// -search.latencyOffset), without the planted checks; it takes a few minutes.
package slolive

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/proctest"
	"github.com/ml-platform/platform/internal/testtools"
)

const (
	nsPartial = "ml-inference-partial"
	nsOutage  = "ml-inference-outage"

	// partialRate is the share of requests failed in ml-inference-partial.
	// The fault switch fails exactly every 5th request (internal/fault spreads
	// failures deterministically), so there is no sampling noise.
	partialRate = 0.2
	// sliTolerance is the absolute difference allowed between the recorded
	// SLI and partialRate. What remains is VictoriaMetrics' rate(): it divides
	// each series' increase by that series' own first-to-last sample span, and
	// the 2xx and 5xx series can start one scrape apart, under a load that is
	// steady but not perfect; plus or minus one request per series. That is a
	// few thousandths (0.2000 to 0.2013 measured in ten runs); 0.02 (10% of
	// the rate) leaves room for a slow, shared machine and is far from what
	// the planted 2xx-as-errors SLI reads (0.8).
	sliTolerance = 0.02

	// phase1 is the least time both namespaces run before the outage. It
	// goes on until the partial namespace has paged.
	phase1 = 30 * time.Second
	// mttdGoal: a page must fire within 2 minutes of the first failure.
	mttdGoal = 2 * time.Minute

	perSecond = 40 // /predict requests per second per server (80 in all: 2 cores)

	// history is the healthy past imported for the outage namespace before
	// its outage (importHistory): longer than the longest page window (6h),
	// so every page condition sees a production-like denominator.
	history     = 7 * time.Hour
	historyStep = 15 * time.Second
	workers     = 4

	pageAvailability = "MLInferenceAvailabilityBudgetBurn"
	pagePrediction   = "MLInferencePredictionErrorBudgetBurn"
	sloAvailability  = "requests-availability"
	sloPrediction    = "inference-error-rate"
)

var generated = filepath.Join(repoRoot, "infrastructure", "base", "observability", "rules", "ml-inference-slos.yaml")

// timings are the pipeline's intervals.
type timings struct {
	name      string
	scrape    time.Duration // VictoriaMetrics' scrape_interval
	eval      time.Duration // vmalert -evaluationInterval
	evalDelay time.Duration // vmalert -rule.evalDelay = VictoriaMetrics -search.latencyOffset (upstream: keep them equal)
}

var testTimings = timings{name: "test", scrape: time.Second, eval: 2 * time.Second, evalDelay: time.Second}

func (tm timings) String() string {
	return fmt.Sprintf("timings=%s scrape_interval=%s evaluation_interval=%s eval_delay=%s", tm.name, tm.scrape, tm.eval, tm.evalDelay)
}

// ruler is one vmalert evaluating a rules file against VictoriaMetrics,
// with the checks that read its results.
type ruler struct {
	vm, vmalert string // base URLs
	prefix      string // how its recorded metric names start: "slo:" or plantedPrefix
	tm          timings
}

func TestSLOLiveRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a live run of ml-inference, VictoriaMetrics and vmalert takes about a minute")
	}
	tm := testTimings
	switch os.Getenv("SLOLIVE_TIMINGS") {
	case "", "test":
	case "production":
		tm = productionTimings(t)
	default:
		t.Fatalf("SLOLIVE_TIMINGS=%q: want test (the default) or production", os.Getenv("SLOLIVE_TIMINGS"))
	}
	withPlanted := tm == testTimings
	vmBin := testtools.Bin(t, "VICTORIA_METRICS_BIN", "victoria-metrics")
	vmalertBin := testtools.Bin(t, "VMALERT_BIN", "vmalert")
	dir := t.TempDir()
	began := time.Now()

	partial := startServer(t, dir, nsPartial)
	outage := startServer(t, dir, nsOutage)

	// VictoriaMetrics scrapes both servers. The target labels are what
	// vmagent's relabelling gives a pod in production
	// (infrastructure/base/observability/vmagent/scrape.yaml): the rules sum
	// by namespace.
	scrape := fmt.Sprintf(`global:
  scrape_interval: %s
  scrape_timeout: %s
scrape_configs:
  - job_name: kubernetes-pods
    static_configs:
      - targets: [%q]
        labels: {namespace: %s, app: ml-inference, env: test}
      - targets: [%q]
        labels: {namespace: %s, app: ml-inference, env: test}
`, tm.scrape, min(tm.scrape, 10*time.Second), strings.TrimPrefix(partial.api, "http://"), nsPartial, strings.TrimPrefix(outage.api, "http://"), nsOutage)
	scrapeFile := filepath.Join(dir, "scrape.yaml")
	if err := os.WriteFile(scrapeFile, []byte(scrape), 0o644); err != nil {
		t.Fatal(err)
	}
	vmProc := proctest.Start(t, dir, "victoria-metrics", nil, vmBin,
		"-httpListenAddr=127.0.0.1:0",
		"-storageDataPath="+filepath.Join(dir, "vm-data"),
		"-retentionPeriod=1d",
		"-promscrape.config="+scrapeFile,
		"-search.latencyOffset="+tm.evalDelay.String(),
		// The imported history must not be hidden by results cached before it.
		"-search.disableCache")
	vm := vmProc.WaitLog(t, vmListening, 30*time.Second)
	vmProc.WaitOK(t, vm+"/health", 30*time.Second)

	// startRuler runs a vmalert on a rules file. The committed rules set no
	// group interval, so -evaluationInterval applies: they run unchanged.
	startRuler := func(name, rules, prefix string, extra ...string) ruler {
		p := proctest.Start(t, dir, name, nil, vmalertBin, append([]string{
			"-httpListenAddr=127.0.0.1:0",
			"-rule=" + rules,
			"-datasource.url=" + vm,
			"-remoteWrite.url=" + vm,
			"-notifier.blackhole",
			"-evaluationInterval=" + tm.eval.String(),
			"-rule.evalDelay=" + tm.evalDelay.String(),
		}, extra...)...)
		r := ruler{vm: vm, vmalert: p.WaitLog(t, vmListening, 30*time.Second), prefix: prefix, tm: tm}
		p.WaitOK(t, r.vmalert+"/health", 30*time.Second)
		return r
	}
	committed := startRuler("vmalert", generated, "slo:")
	var planted ruler
	if withPlanted {
		file := filepath.Join(dir, "planted-rules.yaml")
		if err := os.WriteFile(file, []byte(plantRules(t)), 0o644); err != nil {
			t.Fatal(err)
		}
		// The external label keeps its alert state series (ALERTS) apart
		// from the real ones in the shared VictoriaMetrics.
		planted = startRuler("vmalert-planted", file, plantedPrefix, "-external.label=planted=true")
	}
	t.Logf("stack up in %s (%s): VictoriaMetrics %s, vmalert %s, planted vmalert %q", since(began), tm, vm, committed.vmalert, planted.vmalert)

	ctx := t.Context()

	// Phase 1: partial failures in one namespace, health in the other.
	partial.setErrorRate(t, partialRate)
	loadStart := time.Now()
	lp := startLoad(t, partial.api, perSecond, workers)
	lo := startLoad(t, outage.api, perSecond, workers)
	// The outage namespace gets 7 hours of healthy history as soon as
	// VictoriaMetrics has its first live sample (importHistory).
	// Its /predict successes at the load's rate, its error series (which
	// ml-inference creates at 0) at 0.
	historyMatch := fmt.Sprintf(`inference_requests_total{namespace=%q,endpoint="/predict"}`, nsOutage)
	healthy := func(labels map[string]string) float64 {
		if labels["status"] == "200" {
			return perSecond
		}
		return 0
	}
	for {
		n, err := importHistory(ctx, vm, historyMatch, history, historyStep, healthy)
		if err == nil {
			t.Logf("imported %d samples: %s of healthy history for %s at %d requests/s", n, history, nsOutage, perSecond)
			break
		}
		if time.Since(loadStart) > 3*tm.scrape+tm.evalDelay+10*time.Second {
			t.Fatalf("importing %s's history: %v", nsOutage, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var partialPaged, plantedPaged time.Time
	var plantedQuiet error
	for {
		// The outage must begin long enough after the planted rules paged
		// the healthy namespace for waitFiring to tell the two apart.
		plantedSettled := !withPlanted || !plantedPaged.IsZero() && time.Since(plantedPaged) > tm.evalDelay+tm.eval+time.Second
		if time.Since(loadStart) >= phase1 && !partialPaged.IsZero() && plantedSettled {
			break
		}
		if time.Since(loadStart) > mttdGoal {
			t.Fatalf("after %s: %s paged for %s (20%% errors) at %v; planted rules paged for %s at %v: one of them never happened",
				mttdGoal, pageAvailability, nsPartial, partialPaged, nsOutage, plantedPaged)
		}
		time.Sleep(time.Second)
		as, err := committed.alerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkQuiet(as, nsOutage); err != nil {
			t.Fatalf("%s is healthy (%s), yet after %s of load: %v", nsOutage, lo, since(loadStart), err)
		}
		if partialPaged.IsZero() && firing(as, pageAvailability, nsPartial) != nil {
			partialPaged = time.Now()
		}
		if withPlanted && plantedQuiet == nil {
			pas, err := planted.alerts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if plantedQuiet = checkQuiet(pas, nsOutage); plantedQuiet != nil {
				plantedPaged = time.Now()
			}
		}
	}
	t.Logf("phase 1 after %s: %s: %s; %s: %s", since(loadStart), nsPartial, lp, nsOutage, lo)
	partialMTTD := partialPaged.Sub(time.Unix(0, lp.first5xx.Load()))
	t.Logf("%s paged %s after its first failed request (20%% errors)", nsPartial, partialMTTD.Round(100*time.Millisecond))
	if partialMTTD > mttdGoal {
		t.Errorf("%s took %s to page for 20%% errors, over the %s goal", nsPartial, partialMTTD, mttdGoal)
	}

	// The healthy namespace was quiet while its traffic was in
	// VictoriaMetrics and every rule evaluated without error.
	if lo.errors5xx.Load() != 0 || lo.other.Load() != 0 || lp.other.Load() != 0 {
		t.Fatalf("unexpected responses: %s: %s; %s: %s", nsPartial, lp, nsOutage, lo)
	}
	if r, err := query(ctx, vm, fmt.Sprintf(`sum(rate(inference_requests_total{namespace=%q,endpoint="/predict"}[2m]))`, nsOutage)); err != nil || len(r) != 1 || r[0].Value < perSecond/2 {
		t.Fatalf("%s's traffic is not in VictoriaMetrics (%v, %v): the quiet check proved nothing", nsOutage, r, err)
	}
	// Its SLIs exist and read 0 (the specs' "or 0 * total"): the alert
	// expressions were evaluated over its series and found no burn.
	for _, slo := range []string{sloAvailability, sloPrediction} {
		if got, err := committed.checkSLI(ctx, slo, "5m", nsOutage, 0); err != nil || got != 0 {
			t.Fatalf("the healthy %s's SLI %s: %v, %v", nsOutage, slo, got, err)
		}
	}
	for _, r := range []ruler{committed, planted} {
		if r.vmalert == "" {
			continue
		}
		errs, n, err := ruleErrors(ctx, r.vmalert, loadStart)
		if err != nil || len(errs) > 0 || n == 0 {
			t.Fatalf("vmalert %s: %d rules evaluated since the load began, errors %v %v", r.vmalert, n, errs, err)
		}
	}

	// The recorded SLIs match the injected rate.
	clientRate := float64(lp.errors5xx.Load()) / float64(lp.sent.Load())
	for _, slo := range []string{sloAvailability, sloPrediction} {
		for _, window := range []string{"5m", "1h"} {
			got, err := committed.checkSLI(ctx, slo, window, nsPartial, partialRate)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("SLI %s over %s for %s: %.4f (injected %.2f; the client saw %.4f)", slo, window, nsPartial, got, partialRate, clientRate)
		}
	}

	// Phase 2: a full outage in the healthy namespace.
	outageStart := time.Now()
	outage.setErrorRate(t, 1)
	for lo.first5xx.Load() == 0 {
		if time.Since(outageStart) > 5*time.Second {
			t.Fatalf("no failed request 5 s after switching the outage on: %s", lo)
		}
		time.Sleep(10 * time.Millisecond)
	}
	firstFailure := time.Unix(0, lo.first5xx.Load())
	detectCtx, cancel := context.WithDeadline(ctx, firstFailure.Add(mttdGoal))
	defer cancel()

	// Where the time goes (logged, not checked): when VictoriaMetrics first
	// answers with the outage's 5xx series, and with a recorded 5m and 1h
	// availability SLI over the page threshold (14.4 times the budget).
	milestones := map[string]string{
		"5xx series":        fmt.Sprintf(`inference_requests_total{namespace=%q,status=~"5.."}`, nsOutage),
		"5m SLI over 1.44%": fmt.Sprintf(`slo:sli_error:ratio_rate5m{namespace=%q,sloth_slo=%q} > 0.0144`, nsOutage, sloAvailability),
		"1h SLI over 1.44%": fmt.Sprintf(`slo:sli_error:ratio_rate1h{namespace=%q,sloth_slo=%q} > 0.0144`, nsOutage, sloAvailability),
	}
	milestoneCtx, stopMilestones := context.WithCancel(detectCtx)
	var milestonesWG sync.WaitGroup
	for name, q := range milestones {
		milestonesWG.Go(func() {
			for milestoneCtx.Err() == nil {
				if r, err := query(milestoneCtx, vm, q); err == nil && len(r) > 0 {
					t.Logf("outage: %s in VictoriaMetrics %s after the first failed request", name, since(firstFailure))
					return
				}
				time.Sleep(250 * time.Millisecond)
			}
		})
	}
	defer milestonesWG.Wait()
	defer stopMilestones()

	type detection struct {
		at  time.Time
		err error
	}
	pages := []string{pageAvailability, pagePrediction}
	detected := make([]chan detection, len(pages))
	for i, name := range pages {
		detected[i] = make(chan detection, 1)
		go func() {
			at, err := committed.waitFiring(detectCtx, name, nsOutage, outageStart)
			detected[i] <- detection{at, err}
		}()
	}
	last := firstFailure
	for i, name := range pages {
		d := <-detected[i]
		if d.err != nil {
			t.Errorf("outage in %s (%s): %v", nsOutage, lo, d.err)
			continue
		}
		mttd := d.at.Sub(firstFailure)
		t.Logf("MTTD of %s (severity=page) for %s: %s from the first failed request to firing in vmalert's API", name, nsOutage, mttd.Round(100*time.Millisecond))
		fmt.Printf("SLO_MTTD alert=%s severity=page namespace=%s mttd_seconds=%.1f %s\n", name, nsOutage, mttd.Seconds(), tm)
		if mttd > mttdGoal {
			t.Errorf("%s took %s to page, over the %s goal", name, mttd, mttdGoal)
		}
		if d.at.After(last) {
			last = d.at
		}
	}
	if t.Failed() || !withPlanted {
		return
	}

	// The planted rules, on the same data: every check must fail.
	t.Run("planted", func(t *testing.T) {
		if _, err := planted.checkSLI(ctx, sloAvailability, "5m", nsPartial, partialRate); err == nil {
			t.Error("checkSLI accepted an availability SLI that counts 2xx as errors")
		} else {
			t.Logf("checkSLI on the planted SLI fails, as it should: %v", err)
		}
		// The planted file leaves the prediction SLI intact: the check above
		// fails on the planted breakage, not on the planted set-up.
		if _, err := planted.checkSLI(ctx, sloPrediction, "5m", nsPartial, partialRate); err != nil {
			t.Errorf("the planted file's untouched prediction SLI: %v", err)
		}
		if plantedQuiet == nil {
			t.Errorf("checkQuiet never saw the planted 2xx-as-errors SLI page the healthy %s in phase 1", nsOutage)
		} else {
			t.Logf("checkQuiet on the planted rules fails, as it should: %v", plantedQuiet)
		}
		// The real rules paged by `last`; the planted ones get 5 more
		// evaluations on the same data.
		plantedCtx, cancel := context.WithDeadline(ctx, last.Add(5*tm.eval))
		defer cancel()
		for _, name := range pages {
			if _, err := planted.waitFiring(plantedCtx, name, nsOutage, outageStart); err == nil {
				t.Errorf("waitFiring accepted the planted %s", name)
			} else {
				t.Logf("waitFiring on the planted %s fails, as it should: %v", name, err)
			}
		}
	})
	t.Logf("total %s", since(began))
}

// checkSLI reads the recorded SLI <prefix>sli_error:ratio_rate<window> of one
// SLO and namespace from VictoriaMetrics and returns an error unless there is
// exactly one series, within sliTolerance of want.
func (r ruler) checkSLI(ctx context.Context, slo, window, ns string, want float64) (float64, error) {
	q := fmt.Sprintf(`%ssli_error:ratio_rate%s{sloth_slo=%q,namespace=%q}`, r.prefix, window, slo, ns)
	res, err := query(ctx, r.vm, q)
	if err != nil {
		return 0, err
	}
	if len(res) != 1 {
		return 0, fmt.Errorf("%s: %d series, want 1: %v", q, len(res), res)
	}
	got := res[0].Value
	if math.IsNaN(got) || math.Abs(got-want) > sliTolerance {
		return got, fmt.Errorf("%s = %.4f, want %.2f +- %.2f", q, got, want, sliTolerance)
	}
	return got, nil
}

func (r ruler) alerts(ctx context.Context) ([]alert, error) { return alerts(ctx, r.vmalert) }

// checkQuiet returns an error if any alert is pending or firing for namespace
// ns, or carries no namespace at all (a rule that summed the namespaces away
// would page every environment for one environment's incident).
func checkQuiet(as []alert, ns string) error {
	var bad []string
	for _, a := range as {
		if n, ok := a.Labels["namespace"]; !ok || n == ns {
			bad = append(bad, a.String())
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("alerts for the healthy namespace %s: %s", ns, strings.Join(bad, "; "))
	}
	return nil
}

// firing returns the page alert name for namespace ns if it is firing.
func firing(as []alert, name, ns string) *alert {
	for _, a := range as {
		if a.Name == name && a.State == "firing" && a.Labels["severity"] == "page" && a.Labels["namespace"] == ns {
			return &a
		}
	}
	return nil
}

// waitFiring polls vmalert until the page alert name fires for namespace ns
// and returns when it first saw it firing; it gives up when ctx ends. An
// alert that was already active before the fault began detected nothing:
// that is an error too. (vmalert stamps activeAt with the evaluation time,
// evalDelay early and rounded down to the interval; that much is allowed.)
func (r ruler) waitFiring(ctx context.Context, name, ns string, faultStart time.Time) (time.Time, error) {
	var seen []alert
	for {
		as, err := r.alerts(ctx)
		if err != nil && ctx.Err() == nil {
			return time.Time{}, err
		}
		now := time.Now()
		if a := firing(as, name, ns); a != nil {
			if a.ActiveAt.Before(faultStart.Add(-r.tm.evalDelay - r.tm.eval)) {
				return time.Time{}, fmt.Errorf("%s: active before the fault began at %s, so not a detection", a, faultStart.Format("15:04:05.000"))
			}
			return now, nil
		}
		if err == nil {
			seen = as
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s (severity=page) did not fire for %s by %s; alerts then: %v", name, ns, now.Format("15:04:05"), seen)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// plantedPrefix replaces "slo:" in the planted rules' metric names, so that
// their recordings never mix with the real ones in the shared
// VictoriaMetrics.
const plantedPrefix = "planted_slo:"

var sloMetric = regexp.MustCompile(`\bslo:`)

// plantRules returns the committed rules with two breakages: the
// availability SLI counts 2xx responses as errors, and the prediction-error
// page thresholds are impossible (14.4 and 6 times a budget of 100%).
func plantRules(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(generated)
	if err != nil {
		t.Fatal(err)
	}
	rules := string(data)
	// replace replaces old, which must occur exactly want times.
	replace := func(in, old, new string, want int) string {
		t.Helper()
		if n := strings.Count(in, old); n != want {
			t.Fatalf("planting: %q occurs %d times in the rules, expected %d: the generated rules changed shape", old, n, want)
		}
		return strings.ReplaceAll(in, old, new)
	}
	// Metric names only: the label sloth_slo: must stay.
	if n := len(sloMetric.FindAllString(rules, -1)); n < 20 {
		t.Fatalf("planting: only %d slo: metric names in the rules: the generated rules changed shape", n)
	}
	rules = sloMetric.ReplaceAllString(rules, plantedPrefix)
	// The availability SLI's error selector (the prediction SLI selects
	// endpoint=~, not endpoint!~); one per window from 5m to 3d.
	rules = replace(rules, `inference_requests_total{status=~"5..",endpoint!~`, `inference_requests_total{status=~"2..",endpoint!~`, 7)
	// The prediction-error page: the first alert of its alerts group.
	group := strings.Index(rules, "- name: sloth-slo-alerts-ml-inference-inference-error-rate\n")
	if group < 0 {
		t.Fatal("planting: no prediction-error alerts group")
	}
	start := group + strings.Index(rules[group:], "  - alert:")
	end := start + 1 + strings.Index(rules[start+1:], "  - alert:")
	if start < group || end <= start {
		t.Fatal("planting: cannot find the prediction-error page alert")
	}
	page := rules[start:end]
	if !strings.Contains(page, "severity: page") {
		t.Fatalf("planting: the first prediction-error alert is not the page:\n%s", page)
	}
	page = replace(page, "(14.4 * 0.0009999999999999432)", "(14.4 * 1)", 2)
	page = replace(page, "(6 * 0.0009999999999999432)", "(6 * 1)", 2)
	return rules[:start] + page + rules[end:]
}
