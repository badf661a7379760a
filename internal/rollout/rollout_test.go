package rollout

import (
	"encoding/json"
	"strings"
	"testing"
)

func doc(t *testing.T, js string) rolloutDoc {
	t.Helper()
	var d rolloutDoc
	if err := json.Unmarshal([]byte(js), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPromotePatches: the patches of the kubectl-argo-rollouts plugin
// (v1.10.1, getPatches), case by case. test/delivery promotes a real
// Rollout paused by an inconclusive gate with them.
func TestPromotePatches(t *testing.T) {
	steps := `"steps":[{"setWeight":10},{"pause":{"duration":"5m"}},{"setWeight":80},{"analysis":{"templates":[{"templateName":"judge"}]}}]`
	for _, c := range []struct {
		name, rollout string
		full          bool
		spec, status  string
	}{
		{"at a pause step", `{"spec":{"strategy":{"canary":{` + steps + `}}},"status":{"currentStepIndex":1,"pauseConditions":[{"reason":"CanaryPauseStep"}]}}`, false,
			"", `{"status":{"pauseConditions":null}}`},
		{"an inconclusive gate", `{"spec":{"strategy":{"canary":{` + steps + `}}},"status":{"currentStepIndex":3,"controllerPause":true,"pauseConditions":[{"reason":"InconclusiveAnalysisRun"}],"canary":{"currentStepAnalysisRunStatus":{"status":"Inconclusive"}}}}`, false,
			"", `{"status":{"pauseConditions":null,"controllerPause":false,"currentStepIndex":4}}`},
		{"an inconclusive background analysis", `{"spec":{"strategy":{"canary":{` + steps + `}}},"status":{"currentStepIndex":2,"controllerPause":true,"pauseConditions":[{"reason":"InconclusiveAnalysisRun"}]}}`, false,
			"", `{"status":{"pauseConditions":null}}`},
		{"during a step, no pause", `{"spec":{"strategy":{"canary":{` + steps + `}}},"status":{"currentStepIndex":0}}`, false,
			"", `{"status":{"pauseConditions":null,"currentStepIndex":1}}`},
		{"spec.paused", `{"spec":{"paused":true,"strategy":{"canary":{` + steps + `}}},"status":{"currentStepIndex":1,"pauseConditions":[{"reason":"CanaryPauseStep"}]}}`, false,
			`{"spec":{"paused":false}}`, `{"status":{"pauseConditions":null}}`},
		{"full, during a canary", `{"spec":{"strategy":{"canary":{` + steps + `}}},"status":{"currentPodHash":"new","stableRS":"old"}}`, true,
			"", `{"status":{"promoteFull":true}}`},
		{"full, nothing to promote", `{"spec":{"strategy":{"canary":{` + steps + `}}},"status":{"currentPodHash":"same","stableRS":"same"}}`, true,
			"", ""},
		{"no steps", `{"spec":{"strategy":{"canary":{}}},"status":{}}`, false, "", ""},
	} {
		spec, status := promotePatches(doc(t, c.rollout), c.full)
		if string(spec) != c.spec || string(status) != c.status {
			t.Errorf("%s: spec %s status %s, want %s and %s", c.name, spec, status, c.spec, c.status)
		}
	}
}

func TestStepText(t *testing.T) {
	d := doc(t, `{"spec":{"strategy":{"canary":{"steps":[{"setWeight":30},{"pause":{"duration":"2m"}},{"pause":{}},{"analysis":{"templates":[{"templateName":"a"},{"templateName":"b"}]}}]}}}}`)
	var got []string
	for _, s := range d.Spec.Strategy.Canary.Steps {
		got = append(got, s.String())
	}
	want := "setWeight 30|pause 2m|pause (until promoted)|analysis a, b"
	if strings.Join(got, "|") != want {
		t.Errorf("steps %q, want %q", strings.Join(got, "|"), want)
	}
}

// TestWrite: an aborted canary says so, and a judge's measurement shows its
// verdict and reason rather than the JSON.
func TestWrite(t *testing.T) {
	s := &Status{Namespace: "ml-inference-staging", Name: "ml-inference", Phase: "Degraded", Message: "RolloutAborted: Rollout aborted update to revision 2",
		Aborted: true, Step: 0, Steps: 9, StepText: "setWeight 10", StableHash: "aaa", CanaryHash: "bbb",
		ReplicaSets: []ReplicaSet{{Name: "ml-inference-aaa", Hash: "aaa", Role: "stable", Replicas: 2, ReadyReplicas: 2}},
		Analyses: []Analysis{{Name: "ml-inference-bbb-2", Kind: "background", Phase: "Failed", Metrics: []Metric{
			{Name: "judge-watch", Phase: "Failed", Failed: 1, Measurements: []Measurement{{Phase: "Failed", Value: `{"verdict":"fail","reason":"latency: slower","metrics":[]}`}}},
			{Name: "error-rate", Phase: "Successful", Successful: 1, Measurements: []Measurement{{Phase: "Successful", Value: "[0]"}}},
		}}}}
	var b strings.Builder
	s.Write(&b)
	out := b.String()
	for _, want := range []string{"Rollout ml-inference-staging/ml-inference: Degraded", "aborted: every pod runs the stable version",
		"step: 1 of 9, setWeight 10", "stable: aaa, canary: bbb", "ml-inference-aaa (stable, hash aaa): 2/2",
		"last: Failed verdict fail: latency: slower", "last: Successful [0]"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if v, ok := (Measurement{Value: "[0.5]"}).JudgeVerdict(); ok {
		t.Errorf("a number read as a verdict: %+v", v)
	}
}
