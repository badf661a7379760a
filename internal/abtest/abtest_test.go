package abtest

import (
	"strings"
	"testing"
)

func look(cf, cc, tf, tc int64) Look {
	return Look{Control: Arm{Feedback: cf, Correct: cc}, Treatment: Arm{Feedback: tf, Correct: tc}}
}

func decide(t *testing.T, d Design, looks ...Look) Result {
	t.Helper()
	r, err := Decide(d, looks, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVerdicts(t *testing.T) {
	d := simDesign
	withRequests := func(l Look, cErr, tErr int64) Look {
		l.Control.Requests, l.Control.Errors = 20000, cErr
		l.Treatment.Requests, l.Treatment.Errors = 20000, tErr
		return l
	}
	cases := []struct {
		name  string
		looks []Look
		o     Options
		want  Verdict
		in    string // the reason contains it
	}{
		{"no feedback", []Look{look(0, 0, 0, 0)}, Options{}, KeepRunning, "no feedback yet"},
		{"control only", []Look{look(10, 8, 0, 0)}, Options{}, KeepRunning, "in the treatment"},
		{"early, no difference yet", []Look{look(500, 400, 500, 405)}, Options{}, KeepRunning, "no difference shown yet"},
		{"clear lift", []Look{look(2000, 1600, 2000, 1740)}, Options{}, TreatmentWins, "lies above 0"},
		{"clear loss", []Look{look(2000, 1740, 2000, 1600)}, Options{}, ControlWins, "lies below 0"},
		{"equivalent", []Look{look(60000, 48000, 60000, 48030)}, Options{}, NoDifference, "excludes every effect as large as the MDE"},
		{"planned sample, no difference", []Look{look(5100, 4080, 5100, 4150)}, Options{}, NoDifference, "reached its planned sample"},
		{"out of time", []Look{look(500, 400, 500, 405)}, Options{MaxDurationReached: true}, NoDifference, "maximum duration"},
		{"split broken", []Look{look(6000, 4800, 4000, 3440)}, Options{}, SampleRatioMismatch, "do not fit the configured split"},
		{"better but failing", []Look{withRequests(look(2000, 1600, 2000, 1740), 20, 200)}, Options{}, ControlWins, "guardrail errors breached"},
		{"better, errors unclear", []Look{withRequests(look(2000, 1600, 2000, 1740), 10, 18)}, Options{}, KeepRunning, "waiting until it clears"},
		{"better, errors fine", []Look{withRequests(look(2000, 1600, 2000, 1740), 20, 21)}, Options{}, TreatmentWins, "no guardrail breached"},
	}
	for _, c := range cases {
		r, err := Decide(d, c.looks, c.o)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if r.Verdict != c.want || !strings.Contains(r.Reason, c.in) {
			t.Errorf("%s: %s (%s), want %s (%q)", c.name, r.Verdict, r.Reason, c.want, c.in)
		}
		if r.Verdict == KeepRunning && r.MoreFeedback <= 0 && !strings.Contains(r.Reason, "waiting") {
			t.Errorf("%s: keep running with %d more feedback events", c.name, r.MoreFeedback)
		}
	}
}

// TestMoreFeedback: "about N more" is what the plan still needs at the split.
func TestMoreFeedback(t *testing.T) {
	r := decide(t, simDesign, look(1000, 800, 1000, 805))
	want := int64(r.Plan.Total()+0.999) - 2000
	if r.MoreFeedback < want-1 || r.MoreFeedback > want+1 {
		t.Errorf("more feedback %d, want about %d (plan %.0f)", r.MoreFeedback, want, r.Plan.Total())
	}
	d := simDesign
	d.Split = [2]float64{90, 10}
	r = decide(t, d, look(900, 720, 100, 81))
	if r.Plan.Treatment >= r.Plan.Control || r.MoreFeedback <= 0 {
		t.Errorf("90/10 plan %+v, more %d", r.Plan, r.MoreFeedback)
	}
}

func TestDesignAndInputErrors(t *testing.T) {
	bad := []struct {
		name string
		d    func(*Design)
		in   string
	}{
		{"alpha", func(d *Design) { d.Alpha = 0 }, "alpha"},
		{"power", func(d *Design) { d.Power = 1 }, "power"},
		{"mde", func(d *Design) { d.MDE = 0 }, "minimum detectable effect"},
		{"baseline", func(d *Design) { d.Baseline = 0.99 }, "baseline"},
		{"split", func(d *Design) { d.Split = [2]float64{50, 0} }, "split"},
		{"margin", func(d *Design) { d.Guardrails.ErrorMargin = -1 }, "margins"},
	}
	for _, c := range bad {
		d := simDesign
		c.d(&d)
		if _, err := Decide(d, []Look{look(1, 1, 1, 1)}, Options{}); err == nil || !strings.Contains(err.Error(), c.in) {
			t.Errorf("%s: err %v, want one about %q", c.name, err, c.in)
		}
	}
	for name, l := range map[string]Look{
		"correct > feedback": look(10, 11, 10, 5),
		"negative":           look(-1, 0, 10, 5),
		"errors > requests":  {Control: Arm{Feedback: 1, Requests: 1, Errors: 2}, Treatment: Arm{Feedback: 1}},
	} {
		if _, err := Decide(simDesign, []Look{l}, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Decide(simDesign, nil, Options{}); err == nil {
		t.Error("no looks: no error")
	}
}

// TestHistoryIsAlwaysValid: the history's p-value only falls and its
// interval only narrows, and the last point is Decide's.
func TestHistoryIsAlwaysValid(t *testing.T) {
	var looks []Look
	for k := int64(1); k <= 10; k++ {
		looks = append(looks, look(300*k, 240*k, 300*k, 240*k+9*k))
	}
	h, err := History(simDesign, looks, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != len(looks) {
		t.Fatalf("%d points for %d looks", len(h), len(looks))
	}
	for i := 1; i < len(h); i++ {
		if h[i].PValue > h[i-1].PValue || *h[i].Low < *h[i-1].Low || *h[i].High > *h[i-1].High {
			t.Errorf("point %d %+v moved against point %d %+v", i, h[i], i-1, h[i-1])
		}
	}
	r := decide(t, simDesign, looks...)
	if last := h[len(h)-1]; last.PValue != r.Sequential.PValue || last.Verdict != r.Verdict {
		t.Errorf("last point %+v, Decide %+v", last, r.Sequential)
	}
}
