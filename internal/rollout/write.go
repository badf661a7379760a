package rollout

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Write prints the status for an operator: the phase and why, the step, the
// ReplicaSets and their pods, and each analysis metric with its last
// measurement (the judge's verdict and reason, when the value is the
// judge's answer).
func (s *Status) Write(w io.Writer) {
	fmt.Fprintf(w, "Rollout %s/%s: %s", s.Namespace, s.Name, s.Phase)
	if s.Message != "" {
		fmt.Fprintf(w, " (%s)", s.Message)
	}
	fmt.Fprintln(w)
	if s.Aborted {
		fmt.Fprintln(w, "  aborted: every pod runs the stable version; revert the Git change, or fix it and push a new one")
	}
	if len(s.PauseReasons) > 0 {
		fmt.Fprintf(w, "  paused: %s\n", strings.Join(s.PauseReasons, ", "))
	}
	switch {
	case s.Steps == 0:
		fmt.Fprintln(w, "  steps: none (a new version goes to 100% at once)")
	case s.Step < s.Steps:
		fmt.Fprintf(w, "  step: %d of %d, %s\n", s.Step+1, s.Steps, s.StepText)
	default:
		fmt.Fprintf(w, "  step: all %d done\n", s.Steps)
	}
	fmt.Fprintf(w, "  stable: %s, canary: %s\n", orNone(s.StableHash), canaryText(s))
	for _, rs := range s.ReplicaSets {
		fmt.Fprintf(w, "  ReplicaSet %s (%s, hash %s): %d/%d pods ready\n", rs.Name, rs.Role, rs.Hash, rs.ReadyReplicas, rs.Replicas)
	}
	for _, a := range s.Analyses {
		fmt.Fprintf(w, "  AnalysisRun %s (%s): %s", a.Name, a.Kind, a.Phase)
		if a.Message != "" {
			fmt.Fprintf(w, ": %s", a.Message)
		}
		fmt.Fprintln(w)
		for _, m := range a.Metrics {
			fmt.Fprintf(w, "    %-14s %-12s %d ok, %d failed, %d inconclusive, %d errors", m.Name, m.Phase, m.Successful, m.Failed, m.Inconclusive, m.Errors)
			if last := m.Last(); last.Phase != "" {
				fmt.Fprintf(w, "; last: %s %s", last.Phase, describeValue(last))
			}
			fmt.Fprintln(w)
		}
	}
}

func canaryText(s *Status) string {
	if !s.Canary() {
		return "none (the stable version is the current one)"
	}
	return s.CanaryHash
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Verdict is the part of the judge's answer an operator reads.
type Verdict struct {
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
}

// JudgeVerdict reads a measurement's value as the judge's answer; ok is
// false when it is not one (a Prometheus metric's number).
func (m Measurement) JudgeVerdict() (Verdict, bool) {
	var v Verdict
	if !strings.HasPrefix(strings.TrimSpace(m.Value), "{") || json.Unmarshal([]byte(m.Value), &v) != nil || v.Verdict == "" {
		return Verdict{}, false
	}
	return v, true
}

func describeValue(m Measurement) string {
	if v, ok := m.JudgeVerdict(); ok {
		return fmt.Sprintf("verdict %s: %s", v.Verdict, v.Reason)
	}
	out := m.Value
	if out == "" {
		out = "(no value)"
	}
	if m.Message != "" {
		out += " (" + m.Message + ")"
	}
	return out
}
