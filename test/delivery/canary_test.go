package delivery

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/rollout"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The scenarios' namespaces. The one without traffic is staging's own, so
// `platformctl rollout ... staging` (which finds it in the rendered
// overlay) drives it.
const (
	nsGood          = "delivery-good"
	nsErrors        = "delivery-errors"
	nsLatency       = "delivery-latency"
	nsNoTraffic     = "ml-inference-staging"
	nsFailingStable = "delivery-failing-stable"
)

// inconclusivePause is the pause reason of an inconclusive analysis
// (v1alpha1.PauseReasonInconclusiveAnalysis).
const inconclusivePause = "InconclusiveAnalysisRun"

// Shipped timings (infrastructure/overlays/staging, base/ml-inference/
// analysis.yaml), scaled like the objects the suite applies.
var (
	interval  = scale(time.Minute)     // every analysis metric's interval
	pause     = scale(2 * time.Minute) // each of staging's four pauses
	steps     = 4 * pause              // the canary's pauses in all
	canaryMax = steps + 4*interval     // a canary's whole course, with room for pods and the gate
)

// TestCanaries runs the five scenarios at once on one cluster, one namespace
// each, with the staging manifests of the repository.
func TestCanaries(t *testing.T) {
	start := time.Now()
	s := startSuite(t, []string{nsGood, nsErrors, nsLatency, nsNoTraffic, nsFailingStable})
	staging := renderStaging(t)
	// All at once, whatever -parallel says: each scenario mostly waits.
	t.Run("scenarios", func(t *testing.T) {
		var wg sync.WaitGroup
		defer wg.Wait()
		for _, sc := range []struct {
			name string
			run  func(*testing.T, *suite, []render.Object)
		}{
			{"a good version is promoted through 10/30/50/80 to 100%", goodVersionPromoted},
			{"injected 5xx: aborted, stable keeps every request", errorsAborted},
			{"a latency regression without errors: the judge fails it", latencyFailedByJudge},
			{"no traffic: inconclusive, paused, never promoted", noTrafficPaused},
			{"a failing stable does not make a canary look good", failingStableVouchesForNothing},
			{"an empty or NaN result is never a success", emptyAndNaNNeverPass},
		} {
			wg.Go(func() {
				t.Run(sc.name, func(t *testing.T) { sc.run(t, s, staging) })
			})
		}
	})
	t.Run("the rollout dashboard's metrics exist", func(t *testing.T) { dashboardMetricsExist(t, s) })
	t.Logf("DELIVERY suite wall time %v (of which the builds, cluster, VictoriaMetrics and judge %v)", time.Since(start).Round(time.Second), s.setup.Round(100*time.Millisecond))
}

// analysis returns the Rollout's AnalysisRun of a kind (background or step)
// and one of its metrics.
func analysis(t *testing.T, st *rollout.Status, kind, metric string) (rollout.Analysis, rollout.Metric) {
	t.Helper()
	for _, a := range st.Analyses {
		if a.Kind != kind {
			continue
		}
		for _, m := range a.Metrics {
			if m.Name == metric {
				return a, m
			}
		}
	}
	var b strings.Builder
	st.Write(&b)
	t.Fatalf("no %s AnalysisRun with metric %s:\n%s", kind, metric, b.String())
	return rollout.Analysis{}, rollout.Metric{}
}

func phases(m rollout.Metric) []string {
	var out []string
	for _, ms := range m.Measurements {
		out = append(out, ms.Phase)
	}
	return out
}

// goodVersionPromoted: the staging canary of a good version goes through
// every step, the judge's gate passes it, and no request fails on either
// version, through every scale-up and scale-down of the pods.
func goodVersionPromoted(t *testing.T, s *suite, staging []render.Object) {
	e := deploy(t, s, staging, nsGood, nil, requestRate)
	oldStable := e.status().StableHash
	steps := watchSteps(t, s, e.ns)
	updated := e.update("v0.2.0", "")
	st, done := e.waitFor("promoted to the new version", canaryMax+time.Minute, func(st *rollout.Status) bool {
		return st.Phase == "Healthy" && st.StableHash != oldStable && st.StableHash == st.CanaryHash && !st.Aborted
	})
	if st.Aborted || len(st.PauseReasons) > 0 {
		t.Fatalf("promoted but aborted=%t paused=%v", st.Aborted, st.PauseReasons)
	}
	newHash := st.StableHash
	// Every step was taken, in the status the controller wrote (watched).
	if seen := steps.of(newHash); len(seen) != st.Steps+1 {
		t.Errorf("step indices of the canary %v, want 0..%d:\n%s", seen, st.Steps, e.rec.String())
	}
	gateRun, gate := analysis(t, st, "step", "judge")
	last := gate.Last()
	v, ok := last.JudgeVerdict()
	if gate.Phase != "Successful" || !ok || v.Verdict != "pass" {
		t.Errorf("the judge's gate: %s %v, want Successful with verdict pass", gate.Phase, phases(gate))
	}
	var p95 []string
	for _, m := range gateRun.Metrics {
		if m.Phase != "Successful" {
			t.Errorf("the gate's %s: %s %v, want Successful", m.Name, m.Phase, phases(m))
		}
		if strings.HasPrefix(m.Name, "p95") {
			p95 = append(p95, fmt.Sprintf("%s %s", m.Name, m.Last().Value))
		}
	}
	if len(p95) != 2 {
		t.Errorf("the gate measured %v, want p95-vs-stable and p95-objective", p95)
	}
	_, watch := analysis(t, st, "background", "error-rate")
	// One inconclusive measurement is tolerated (the canary's first
	// window may hold no scrape yet); then every one passes.
	if watch.Failed > 0 || watch.Inconclusive > 1 || watch.Successful == 0 {
		t.Errorf("background error-rate of a good version: %v", phases(watch))
	}
	time.Sleep(time.Second) // the last requests to old pods complete
	counts := e.load.count(updated.Add(-time.Minute), time.Now())
	old, nw := counts[oldStable], counts[newHash]
	if old.failed+nw.failed > 0 || old.requests == 0 || nw.requests == 0 {
		t.Errorf("requests during the canary: stable %v, canary %v; want none failed", old, nw)
	}
	// The canary's share of the requests at each weight (replica-weighted:
	// its share of the pods).
	var shares []string
	for i := 0; i < st.Steps; i += 2 {
		from, ok1 := e.rec.first(func(ev event) bool { return ev.stepIndex == i+1 && ev.canary == newHash })
		to, ok2 := e.rec.first(func(ev event) bool { return ev.stepIndex > i+1 && ev.canary == newHash })
		if !ok1 || !ok2 {
			continue
		}
		c := e.load.count(from.at, to.at)
		share := float64(c[newHash].requests) / float64(c[newHash].requests+c[oldStable].requests)
		end, _ := e.rec.last(func(ev event) bool { return ev.stepIndex == i+1 && ev.canary == newHash })
		shares = append(shares, fmt.Sprintf("%s: %.0f%% (pods at the end of its pause: %d canary, %d stable)", st.StepTexts[i], 100*share, end.canPod, end.stablePods))
	}
	t.Logf("DELIVERY promoted: update to 100%% in %v; canary share of requests per step: %s; requests stable %v, canary %v; gate: %s; judge: %s",
		done.Sub(updated).Round(time.Second), strings.Join(shares, "; "), old, nw, strings.Join(p95, ", "), v.Reason)
	t.Logf("timeline:\n%s", e.rec.String())
}

// errorsAborted: a version that fails 20% of requests is aborted by the
// background analysis, within two intervals of its start; the stable pods
// keep serving every request, without a failure; the canary gets none once
// aborted.
func errorsAborted(t *testing.T, s *suite, staging []render.Object) {
	e := deploy(t, s, staging, nsErrors, nil, requestRate)
	stable := e.status().StableHash
	updated := e.update("v0.2.0", "error_rate=0.2")
	st, abortedAt := e.waitFor("aborted", canaryMax, func(st *rollout.Status) bool { return st.Aborted })
	canary := st.CanaryHash
	served, ok := e.rec.first(func(ev event) bool { return ev.canPod > 0 })
	if !ok {
		t.Fatalf("the canary never served:\n%s", e.rec.String())
	}
	// The judge's exact test or the plan's error-rate check, whichever
	// measures first with enough data: the run fails.
	run, m := analysis(t, st, "background", "error-rate")
	_, watch := analysis(t, st, "background", "judge-watch")
	if run.Phase != "Failed" || (m.Phase != "Failed" && watch.Phase != "Failed") {
		t.Errorf("background analysis %s (%s), error-rate %s %v, judge-watch %s %v: want the run Failed by one of them", run.Phase, run.Message, m.Phase, phases(m), watch.Phase, phases(watch))
	}
	// The canary's pods go; the stable version serves everything.
	e.waitFor("back on the stable pods only", time.Minute, func(st *rollout.Status) bool {
		return e.fleet.byHash()[canary] == 0 && e.fleet.byHash()[stable] == 2
	})
	gone := time.Now()
	time.Sleep(5 * time.Second)
	after := e.load.count(gone, time.Now())
	before := e.load.count(updated, abortedAt)
	all := e.load.count(updated.Add(-time.Minute), time.Now())
	if after[canary].requests > 0 || after[stable].requests == 0 {
		t.Errorf("after the abort: canary %v, stable %v; want every request on stable", after[canary], after[stable])
	}
	if all[stable].failed > 0 {
		t.Errorf("the stable path failed %d requests; want none", all[stable].failed)
	}
	if before[canary].failed == 0 {
		t.Errorf("the canary failed no request before the abort (%v): the fault was not on", before[canary])
	}
	fromStart := abortedAt.Sub(served.at)
	if fromStart > 2*interval+scale(15*time.Second) {
		t.Errorf("aborted %v after the canary started serving: more than two analysis intervals (%v) and a scrape", fromStart, 2*interval)
	}
	lastCanary := e.load.lastRequest(canary)
	// An operator retries (a false alarm?): the same version is judged
	// again from its first step, and aborted again.
	if err := rollout.Retry(context.Background(), s.cluster.Client, nsErrors, workload); err != nil {
		t.Fatal(err)
	}
	e.waitFor("retried", time.Minute, func(st *rollout.Status) bool { return !st.Aborted })
	_, again := e.waitFor("aborted again", canaryMax, func(st *rollout.Status) bool { return st.Aborted })
	if all := e.load.count(updated.Add(-time.Minute), time.Now()); all[stable].failed > 0 {
		t.Errorf("the stable path failed %d requests through the retry", all[stable].failed)
	}
	t.Logf("DELIVERY aborted on 5xx: %v after the update, %v (%.2f intervals of %v) after the canary started serving (%s); error-rate %v, judge-watch %v; the canary served %v before the abort, its last request %v after the abort was seen; stable path: %v in all, %d failed",
		abortedAt.Sub(updated).Round(100*time.Millisecond), fromStart.Round(100*time.Millisecond), fromStart.Seconds()/interval.Seconds(), interval, run.Message, phases(m), phases(watch),
		before[canary], lastCanary.Sub(abortedAt).Round(100*time.Millisecond), all[stable], all[stable].failed)
	t.Logf("DELIVERY retried by hand: aborted again %v after the first abort", again.Sub(abortedAt).Round(100*time.Millisecond))
	t.Logf("timeline:\n%s", e.rec.String())
}

// latencyFailedByJudge: a version 50 ms slower on every request, without an
// error. The plan's error-rate check passes every measurement; the judge
// fails it, and the rollout aborts long before the gate's p95 thresholds
// would have looked.
func latencyFailedByJudge(t *testing.T, s *suite, staging []render.Object) {
	e := deploy(t, s, staging, nsLatency, nil, requestRate)
	stable := e.status().StableHash
	updated := e.update("v0.2.0", "latency=50ms")
	st, abortedAt := e.waitFor("aborted", canaryMax, func(st *rollout.Status) bool { return st.Aborted })
	canary := st.CanaryHash
	_, errRate := analysis(t, st, "background", "error-rate")
	if errRate.Failed > 0 || errRate.Successful == 0 {
		t.Errorf("error-rate on a slower version without errors: %v; want only Successful", phases(errRate))
	}
	_, watch := analysis(t, st, "background", "judge-watch")
	var failed *rollout.Verdict
	for _, ms := range watch.Measurements {
		if v, ok := ms.JudgeVerdict(); ok && ms.Phase == "Failed" && v.Verdict == "fail" {
			failed = &v
			break
		}
	}
	if failed == nil {
		v, _ := watch.Last().JudgeVerdict()
		t.Errorf("judge-watch never failed the slower canary: %v; last verdict %s: %s", phases(watch), v.Verdict, v.Reason)
	} else if !strings.Contains(failed.Reason, "latency") {
		t.Errorf("the judge failed it, but not for latency: %s", failed.Reason)
	}
	all := e.load.count(updated.Add(-time.Minute), time.Now())
	if all[stable].failed+all[canary].failed > 0 {
		t.Errorf("requests failed: stable %v, canary %v", all[stable], all[canary])
	}
	reason := "(none)"
	if failed != nil {
		reason = failed.Reason
	}
	t.Logf("DELIVERY aborted on latency: %v after the update; error-rate %v; judge-watch %v: %s",
		abortedAt.Sub(updated).Round(100*time.Millisecond), phases(errRate), phases(watch), reason)
}

// noTrafficPaused: a canary nobody calls has no series to judge. Every
// measurement is inconclusive (an empty or NaN result is never a success),
// the rollout pauses and stays paused through the time its steps would
// take; an operator aborts it with platformctl.
func noTrafficPaused(t *testing.T, s *suite, staging []render.Object) {
	e := deploy(t, s, staging, nsNoTraffic, nil, 0)
	stable := e.status().StableHash
	updated := e.update("v0.2.0", "")
	st, pausedAt := e.waitFor("paused by an inconclusive analysis", canaryMax, func(st *rollout.Status) bool {
		return slices.Contains(st.PauseReasons, inconclusivePause)
	})
	run, m := analysis(t, st, "background", "error-rate")
	if run.Phase != "Inconclusive" || m.Successful > 0 {
		t.Errorf("background analysis %s, error-rate %v: want Inconclusive, never Successful", run.Phase, phases(m))
	}
	// Never promoted: wait the whole course of a canary. While paused, the
	// controller may still count elapsed pause steps (the step index moves
	// on), but it scales nothing: the canary keeps its first step's pod, the
	// stable its pods and its place.
	firstPods := e.fleet.byHash()[st.CanaryHash]
	deadline := updated.Add(steps + interval)
	for time.Now().Before(deadline) {
		st := e.status()
		pods := e.fleet.byHash()
		if st.StableHash != stable || st.Phase != "Paused" || pods[st.CanaryHash] > firstPods || pods[stable] != 2 {
			t.Fatalf("a canary without traffic moved on: %s, stable %s (was %s), pods %v:\n%s", st.Phase, st.StableHash, stable, pods, e.rec.String())
		}
		time.Sleep(time.Second)
	}
	out := platformctl(t, s, "rollout", "status", "staging")
	if !strings.Contains(out, inconclusivePause) || !strings.Contains(out, "error-rate") {
		t.Errorf("platformctl rollout status staging does not say why it is paused:\n%s", out)
	}
	platformctl(t, s, "rollout", "abort", "staging")
	e.waitFor("aborted, back on stable", time.Minute, func(st *rollout.Status) bool {
		return st.Aborted && e.fleet.byHash()[st.CanaryHash] == 0 && e.fleet.byHash()[stable] == 2
	})
	t.Logf("DELIVERY no traffic: paused %v after the update (error-rate %v), still paused %v after it (a whole canary's course), aborted with platformctl",
		pausedAt.Sub(updated).Round(100*time.Millisecond), phases(m), time.Since(updated).Round(time.Second))
	t.Logf("platformctl rollout status staging:\n%s", out)
}

// failingStableVouchesForNothing: the stable version fails 20% of its
// requests; the canary fails none. Compared with that stable anything looks
// good, so the judge will not pass it: the canary reaches the gate and
// pauses there, inconclusive, until an operator decides (here: promotes).
func failingStableVouchesForNothing(t *testing.T, s *suite, staging []render.Object) {
	e := deploy(t, s, staging, nsFailingStable, withFault("error_rate=0.2"), requestRate)
	stable := e.status().StableHash
	updated := e.update("v0.2.0", "")
	st, pausedAt := e.waitFor("paused at the judge's gate", canaryMax+time.Minute, func(st *rollout.Status) bool {
		return slices.Contains(st.PauseReasons, inconclusivePause) || st.Aborted || st.StableHash != stable
	})
	if st.StableHash != stable || st.Aborted {
		t.Fatalf("with a failing stable: stable %s (was %s), aborted %t; want paused at the gate:\n%s", st.StableHash, stable, st.Aborted, e.rec.String())
	}
	if st.Step != st.Steps-1 {
		t.Errorf("paused at step %d (%s), want the gate (step %d)", st.Step+1, st.StepText, st.Steps)
	}
	_, gate := analysis(t, st, "step", "judge")
	v, ok := gate.Last().JudgeVerdict()
	if !ok || v.Verdict != "inconclusive" || !strings.Contains(v.Reason, "stable") {
		t.Errorf("the judge's gate with a failing stable: %s %v %+v; want inconclusive, naming the stable", gate.Phase, phases(gate), v)
	}
	_, watch := analysis(t, st, "background", "judge-watch")
	for _, ms := range watch.Measurements {
		if v, ok := ms.JudgeVerdict(); ok && v.Verdict == "pass" {
			t.Errorf("the judge passed a canary against a failing stable: %s", v.Reason)
		}
	}
	// The operator's decision: the canary is the fix. Promote.
	if err := rollout.Promote(context.Background(), s.cluster.Client, nsFailingStable, workload, false); err != nil {
		t.Fatal(err)
	}
	e.waitFor("promoted by the operator", 2*time.Minute, func(st *rollout.Status) bool {
		return st.Phase == "Healthy" && st.StableHash == st.CanaryHash && st.StableHash != stable
	})
	t.Logf("DELIVERY failing stable: paused at the gate %v after the update; gate %s: %s; promoted by hand", pausedAt.Sub(updated).Round(time.Second), v.Verdict, v.Reason)
}

// platformctl runs the built platformctl against the test cluster, from the
// repository root, and returns its output.
func platformctl(t *testing.T, s *suite, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.platform, append(args, "--kubeconfig", s.cluster.Kubeconfig)...)
	cmd.Dir = repoRoot
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("platformctl %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// stepWatch records every step index the Rollout's status takes for each
// canary hash, from a watch: every status write the controller makes is an
// update the watch delivers, so a step that lasts a few milliseconds (a
// setWeight whose pods are already there, a gate whose verdict is ready) is
// seen too, where the recorder's 100 ms samples may miss it.
type stepWatch struct {
	mu    sync.Mutex
	steps map[string]map[int]bool // canary hash -> step indices
}

func watchSteps(t *testing.T, s *suite, namespace string) *stepWatch {
	t.Helper()
	wc, err := client.NewWithWatch(s.cluster.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(rollout.RolloutGVK.GroupVersion().WithKind("RolloutList"))
	w, err := wc.Watch(context.Background(), list, client.InNamespace(namespace), client.MatchingFields{"metadata.name": workload})
	if err != nil {
		t.Fatal(err)
	}
	sw := &stepWatch{steps: map[string]map[int]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			hash, _, _ := unstructured.NestedString(u.Object, "status", "currentPodHash")
			index, found, _ := unstructured.NestedInt64(u.Object, "status", "currentStepIndex")
			if !found || hash == "" {
				continue
			}
			sw.mu.Lock()
			if sw.steps[hash] == nil {
				sw.steps[hash] = map[int]bool{}
			}
			sw.steps[hash][int(index)] = true
			sw.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return sw
}

// of is the step indices seen for the canary hash, sorted.
func (sw *stepWatch) of(hash string) []int {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return slices.Sorted(maps.Keys(sw.steps[hash]))
}
