package delivery

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/rollout"
	"github.com/ml-platform/platform/internal/testcluster"
)

// The shipped addresses that patch replaces.
const (
	shippedPrometheus = "http://victoria-metrics.observability.svc:8428"
	shippedJudge      = "http://judge.ml-platform.svc:8080"
	workload          = "ml-inference"
)

// renderStaging renders infrastructure/overlays/staging as Argo CD would.
func renderStaging(t *testing.T) []render.Object {
	t.Helper()
	repo, err := gitops.Load(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	e, err := repo.Environment("staging")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := render.Build(e.Path)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// patchForTest puts the rendered staging objects in namespace, pointed at
// this suite's VictoriaMetrics and judge, with every duration scaled. It
// changes nothing else, and fails if a field it patches is not where the
// shipped files have it (so a change to them cannot leave the test running
// other timings than it says).
func patchForTest(t *testing.T, s *suite, objs []render.Object, namespace string, template func(*unstructured.Unstructured)) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, o := range objs {
		u := o.DeepCopy()
		if u.GetKind() == "Namespace" {
			u.SetName(namespace)
		} else {
			u.SetNamespace(namespace)
		}
		var err error
		switch u.GetKind() {
		case "AnalysisTemplate":
			err = patchTemplate(u, s.vm, s.judge)
		case "Rollout":
			err = patchRollout(u)
			if err == nil && template != nil {
				template(u)
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", render.Ref(o.Unstructured), err)
		}
		out = append(out, u)
	}
	return out
}

// patchTemplate: addresses and durations of one AnalysisTemplate.
func patchTemplate(u *unstructured.Unstructured, vm, judge string) error {
	args, _, _ := unstructured.NestedSlice(u.Object, "spec", "args")
	for _, a := range args {
		arg := a.(map[string]any)
		if arg["name"] == "window" {
			v, err := scaleString(fmt.Sprint(arg["value"]))
			if err != nil {
				return fmt.Errorf("arg window: %w", err)
			}
			arg["value"] = v
		}
	}
	if err := unstructured.SetNestedSlice(u.Object, args, "spec", "args"); err != nil {
		return err
	}
	metrics, _, _ := unstructured.NestedSlice(u.Object, "spec", "metrics")
	for _, m := range metrics {
		metric := m.(map[string]any)
		for _, k := range []string{"interval", "initialDelay"} {
			if v, ok := metric[k].(string); ok {
				s, err := scaleString(v)
				if err != nil {
					return fmt.Errorf("metric %v: %s: %w", metric["name"], k, err)
				}
				metric[k] = s
			}
		}
		provider, _ := metric["provider"].(map[string]any)
		if p, ok := provider["prometheus"].(map[string]any); ok {
			if p["address"] != shippedPrometheus {
				return fmt.Errorf("metric %v: prometheus address %v, want %s", metric["name"], p["address"], shippedPrometheus)
			}
			p["address"] = vm
		}
		if w, ok := provider["web"].(map[string]any); ok {
			raw, _ := w["url"].(string)
			rest, found := strings.CutPrefix(raw, shippedJudge)
			if !found {
				return fmt.Errorf("metric %v: web url %q does not start with %s", metric["name"], raw, shippedJudge)
			}
			path, query, _ := strings.Cut(rest, "?")
			// The query holds {{args.*}} placeholders: scale window and step
			// textually, leaving the rest as it is.
			var parts []string
			for _, kv := range strings.Split(query, "&") {
				k, v, _ := strings.Cut(kv, "=")
				if k == "window" || k == "step" {
					s, err := scaleString(v)
					if err != nil {
						return fmt.Errorf("metric %v: url %s: %w", metric["name"], k, err)
					}
					kv = k + "=" + s
				}
				parts = append(parts, kv)
			}
			w["url"] = judge + path + "?" + strings.Join(parts, "&")
		}
	}
	return unstructured.SetNestedSlice(u.Object, metrics, "spec", "metrics")
}

// patchRollout: the pauses' durations.
func patchRollout(u *unstructured.Unstructured) error {
	steps, _, _ := unstructured.NestedSlice(u.Object, "spec", "strategy", "canary", "steps")
	if len(steps) == 0 {
		return fmt.Errorf("no canary steps: staging must run a canary")
	}
	for i, st := range steps {
		step := st.(map[string]any)
		if p, ok := step["pause"].(map[string]any); ok {
			d, err := scaleString(fmt.Sprint(p["duration"]))
			if err != nil {
				return fmt.Errorf("steps[%d].pause.duration: %w", i, err)
			}
			p["duration"] = d
		}
	}
	return unstructured.SetNestedSlice(u.Object, steps, "spec", "strategy", "canary", "steps")
}

// withFault sets the test-only fault annotation on a Rollout's pod template.
func withFault(query string) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		ann, _, _ := unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "annotations")
		if ann == nil {
			ann = map[string]string{}
		}
		ann[faultAnnotation] = query
		unstructured.SetNestedStringMap(u.Object, ann, "spec", "template", "metadata", "annotations")
	}
}

// env is one scenario's namespace: the staging objects, the fleet playing
// their pods, the load, and a recorder of the Rollout's status.
type env struct {
	t     *testing.T
	s     *suite
	ns    string
	fleet *fleet
	load  *load
	rec   *recorder
}

// deploy applies the staging objects in namespace, starts the fleet, waits
// for the first revision to be Healthy (a first revision skips the steps,
// as on a real cluster) and starts the load (perSecond 0: none).
func deploy(t *testing.T, s *suite, staging []render.Object, namespace string, first func(*unstructured.Unstructured), perSecond int) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	objs := patchForTest(t, s, staging, namespace, first)
	// In Argo CD's order: the Namespace, the built-in kinds (the Services
	// the Rollout names among them), then custom resources.
	order := func(u *unstructured.Unstructured) int {
		switch {
		case u.GetKind() == "Namespace":
			return 0
		case u.GroupVersionKind().Group == "argoproj.io":
			return 2
		}
		return 1
	}
	for pass := range 3 {
		for _, u := range objs {
			if order(u) != pass {
				continue
			}
			if err := s.cluster.Client.Create(ctx, u); err != nil {
				t.Fatalf("create %s: %v", render.Ref(u), err)
			}
		}
	}
	e := &env{t: t, s: s, ns: namespace, fleet: startFleet(t, s, namespace)}
	start := time.Now()
	if err := s.cluster.WaitReady(ctx, testcluster.Workload{Kind: "Rollout", Namespace: namespace, Name: workload}); err != nil {
		t.Fatal(err)
	}
	// Healthy in the API is the pods; the fleet serves them a moment later.
	for len(e.fleet.endpoints()) < 2 {
		if ctx.Err() != nil {
			t.Fatalf("the fleet serves %d pods of %s, want 2", len(e.fleet.endpoints()), namespace)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%s: first revision Healthy and served in %v", namespace, time.Since(start).Round(time.Millisecond))
	e.rec = startRecorder(t, s.cluster.Client, namespace, e.fleet)
	if perSecond > 0 {
		e.load = startLoad(t, e.fleet, perSecond)
	}
	return e
}

// update is the Git change that starts a canary: a new image tag, and
// optionally a fault for the new pods.
func (e *env) update(tag, fault string) time.Time {
	e.t.Helper()
	ops := []string{fmt.Sprintf(`{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"ghcr.io/ml-platform/ml-inference:%s"}`, tag)}
	key := strings.ReplaceAll(faultAnnotation, "/", "~1")
	if fault != "" {
		ops = append(ops, fmt.Sprintf(`{"op":"add","path":"/spec/template/metadata/annotations/%s","value":%q}`, key, fault))
	} else if e.rolloutHasFault() {
		ops = append(ops, fmt.Sprintf(`{"op":"remove","path":"/spec/template/metadata/annotations/%s"}`, key))
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(rollout.RolloutGVK)
	u.SetNamespace(e.ns)
	u.SetName(workload)
	at := time.Now()
	if err := e.s.cluster.Client.Patch(context.Background(), u, client.RawPatch(types.JSONPatchType, []byte("["+strings.Join(ops, ",")+"]"))); err != nil {
		e.t.Fatalf("update %s to %s: %v", e.ns, tag, err)
	}
	return at
}

func (e *env) rolloutHasFault() bool {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(rollout.RolloutGVK)
	if err := e.s.cluster.Client.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: workload}, u); err != nil {
		e.t.Fatal(err)
	}
	_, found, _ := unstructured.NestedString(u.Object, "spec", "template", "metadata", "annotations", faultAnnotation)
	return found
}

// status reads the Rollout now.
func (e *env) status() *rollout.Status {
	e.t.Helper()
	st, err := rollout.Get(context.Background(), e.s.cluster.Client, e.ns, workload)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// waitFor polls the Rollout until cond holds, or fails after timeout with
// what it last saw.
func (e *env) waitFor(what string, timeout time.Duration, cond func(*rollout.Status) bool) (*rollout.Status, time.Time) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := rollout.Get(context.Background(), e.s.cluster.Client, e.ns, workload)
		if err == nil && cond(st) {
			return st, time.Now()
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			if st != nil {
				st.Write(&b)
			}
			e.t.Fatalf("%s: not %s within %v (err %v):\n%s\ntimeline:\n%s", e.ns, what, timeout, err, b.String(), e.rec.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// recorder logs every change of the Rollout's phase, step and abort flag,
// with the pods the fleet serves per hash at that moment.
type recorder struct {
	mu     sync.Mutex
	events []event
	stop   chan struct{}
	wg     sync.WaitGroup
}

type event struct {
	at                 time.Time
	phase, step        string
	stepIndex          int
	aborted            bool
	pause              string
	stable, canary     string
	stablePods, canPod int
}

func (ev event) String() string {
	return fmt.Sprintf("%s %-11s step %d (%s) aborted=%t paused=%q pods stable %d canary %d",
		ev.at.Format("15:04:05.000"), ev.phase, ev.stepIndex, ev.step, ev.aborted, ev.pause, ev.stablePods, ev.canPod)
}

func startRecorder(t *testing.T, c client.Client, namespace string, f *fleet) *recorder {
	r := &recorder{stop: make(chan struct{})}
	r.wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		var last event
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
			st, err := rollout.Get(context.Background(), c, namespace, workload)
			if err != nil {
				continue
			}
			pods := f.byHash()
			ev := event{at: time.Now(), phase: st.Phase, step: st.StepText, stepIndex: st.Step, aborted: st.Aborted,
				pause: strings.Join(st.PauseReasons, ","), stable: st.StableHash, canary: st.CanaryHash,
				stablePods: pods[st.StableHash]}
			if st.Canary() {
				ev.canPod = pods[st.CanaryHash]
			}
			if ev.phase != last.phase || ev.stepIndex != last.stepIndex || ev.aborted != last.aborted || ev.pause != last.pause ||
				ev.stablePods != last.stablePods || ev.canPod != last.canPod || ev.stable != last.stable {
				r.mu.Lock()
				r.events = append(r.events, ev)
				r.mu.Unlock()
				last = ev
			}
		}
	})
	t.Cleanup(func() {
		close(r.stop)
		r.wg.Wait()
	})
	return r
}

// first is the first recorded event matching cond (ok false if none).
func (r *recorder) first(cond func(event) bool) (event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if cond(ev) {
			return ev, true
		}
	}
	return event{}, false
}

// last is the last recorded event matching cond (ok false if none).
func (r *recorder) last(cond func(event) bool) (event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if cond(r.events[i]) {
			return r.events[i], true
		}
	}
	return event{}, false
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, ev := range r.events {
		fmt.Fprintf(&b, "  %s\n", ev)
	}
	return b.String()
}

// judgeVerdict asks the judge directly, as the analysis would.
func (e *env) judgeVerdict(canary, stable string) (rollout.Verdict, string, error) {
	q := url.Values{"namespace": {e.ns}, "canary": {canary}, "stable": {stable}, "window": {scale(30 * time.Minute).String()}, "step": {scale(time.Minute).String()}}
	body, err := get(context.Background(), e.s.judge+"/v1/judge?"+q.Encode())
	if err != nil {
		return rollout.Verdict{}, "", err
	}
	m := rollout.Measurement{Value: string(body)}
	v, ok := m.JudgeVerdict()
	if !ok {
		return rollout.Verdict{}, string(body), fmt.Errorf("the judge's answer has no verdict: %s", body)
	}
	return v, string(body), nil
}
