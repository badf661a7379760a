package delivery

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/rollout"
)

const nsConditions = "delivery-conditions"

// emptyAndNaNNeverPass runs every shipped Prometheus metric once, as an
// AnalysisRun on the real controller, on the two answers that carry no
// evidence:
//
//   - empty: the real VictoriaMetrics, asked about a pod template hash that
//     has no series (a canary nobody scraped yet, a wrong hash). VictoriaMetrics
//     also answers 0/0 this way: it drops NaN from instant results.
//   - NaN: Prometheus answers 0/0 (no requests) with a NaN sample, which a
//     VictoriaMetrics never sends; a loopback handler returns exactly that
//     Prometheus API answer, so the conditions are proven for either store.
//
// Each must be Inconclusive: never Successful. A planted metric with the
// usual failure-only condition (`result[0] >= X`: "fail when the error rate
// is high") is Successful on NaN, which shows the check can tell.
func emptyAndNaNNeverPass(t *testing.T, s *suite, staging []render.Object) {
	ctx := context.Background()
	nan := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"NaN"]}]}}`, time.Now().Unix())
	}))
	t.Cleanup(nan.Close)

	objs := patchForTest(t, s, staging, nsConditions, nil)
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			if err := s.cluster.Client.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	type run struct {
		name, want string
	}
	var runs []run
	for _, u := range objs {
		if u.GetKind() != "AnalysisTemplate" {
			continue
		}
		metrics, _, _ := unstructured.NestedSlice(u.Object, "spec", "metrics")
		args, _, _ := unstructured.NestedSlice(u.Object, "spec", "args")
		for _, m := range metrics {
			metric := m.(map[string]any)
			prom, ok := metric["provider"].(map[string]any)["prometheus"].(map[string]any)
			if !ok {
				continue
			}
			for _, c := range []struct {
				answer, address string
				naive           bool
				want            string
			}{
				{"empty", s.vm, false, "Inconclusive"},
				{"nan", nan.URL, false, "Inconclusive"},
				{"nan", nan.URL, true, "Successful"}, // planted: the naive condition passes NaN
			} {
				mm := cloneMap(metric)
				// One measurement now: the conditions are what is tested.
				// With no inconclusive measurement allowed, the run's phase
				// is that measurement's. (The shipped metrics allow one,
				// which is safe only because they have no count: a run with
				// a count ends Successful when its inconclusive
				// measurements stay within the limit.)
				delete(mm, "interval")
				delete(mm, "initialDelay")
				mm["count"] = int64(1)
				mm["inconclusiveLimit"] = int64(0)
				mm["provider"] = map[string]any{"prometheus": map[string]any{"address": c.address, "query": prom["query"]}}
				name := fmt.Sprintf("%s-%s", metric["name"], c.answer)
				if c.naive {
					naive, err := naiveCondition(fmt.Sprint(mm["failureCondition"]))
					if err != nil {
						t.Fatalf("%s: %v", u.GetName(), err)
					}
					delete(mm, "successCondition")
					mm["failureCondition"] = naive
					name += "-planted"
				}
				ar := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "argoproj.io/v1alpha1",
					"kind":       "AnalysisRun",
					"metadata":   map[string]any{"name": name, "namespace": nsConditions},
					"spec": map[string]any{
						"args":    withArgs(args, map[string]string{"namespace": "delivery-nowhere", "canary-hash": "nothing", "stable-hash": "nothing-either"}),
						"metrics": []any{mm},
					},
				}}
				if err := s.cluster.Client.Create(ctx, ar); err != nil {
					t.Fatalf("AnalysisRun %s: %v", name, err)
				}
				runs = append(runs, run{name, c.want})
			}
		}
	}
	if len(runs) != 9 {
		t.Fatalf("%d runs from the shipped Prometheus metrics, want 9 (three metrics, three answers)", len(runs))
	}
	deadline := time.Now().Add(time.Minute)
	for _, r := range runs {
		for {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(rollout.AnalysisRunGVK)
			if err := s.cluster.Client.Get(ctx, types.NamespacedName{Namespace: nsConditions, Name: r.name}, u); err != nil {
				t.Fatal(err)
			}
			a, err := rollout.ReadAnalysis(u)
			if err != nil {
				t.Fatal(err)
			}
			if done := a.Phase != "" && a.Phase != "Pending" && a.Phase != "Running"; done {
				var last rollout.Measurement
				if len(a.Metrics) == 1 {
					last = a.Metrics[0].Last()
				}
				if a.Phase != r.want || last.Phase != r.want {
					t.Errorf("AnalysisRun %s: %s (%s), its measurement %s %q; want %s", r.name, a.Phase, a.Message, last.Phase, last.Value, r.want)
				}
				t.Logf("%s: measurement %s, value %q", r.name, last.Phase, last.Value)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("AnalysisRun %s still %q after a minute", r.name, a.Phase)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// naiveCondition strips the shipped guards off a failure condition:
// `len(result) == 1 && !isNaN(result[0]) && result[0] >= X` becomes
// `result[0] >= X`.
func naiveCondition(shipped string) (string, error) {
	i := strings.Index(shipped, "result[0] ")
	guard := strings.Index(shipped, "!isNaN(result[0])")
	if guard < 0 || i < guard {
		return "", fmt.Errorf("failureCondition %q has no isNaN guard before its comparison", shipped)
	}
	return shipped[i:], nil
}

// withArgs is the template's args with the given values filled in.
func withArgs(args []any, values map[string]string) []any {
	var out []any
	for _, a := range args {
		arg := cloneMap(a.(map[string]any))
		if v, ok := values[fmt.Sprint(arg["name"])]; ok {
			arg["value"] = v
		}
		out = append(out, arg)
	}
	return out
}

func cloneMap(m map[string]any) map[string]any {
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}
