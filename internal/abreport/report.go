package abreport

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ml-platform/platform/internal/abtest"
	"github.com/ml-platform/platform/internal/experiment"
)

// Report is an experiment's verdict with its evidence.
type Report struct {
	Experiment string         `json:"experiment"`
	Control    string         `json:"control"`
	Treatment  string         `json:"treatment"`
	Namespace  string         `json:"namespace"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
	Step       string         `json:"step"`
	P95        [2]float64     `json:"p95_seconds"` // -1: no requests
	Result     abtest.Result  `json:"result"`
	History    []abtest.Point `json:"history"`

	spec *experiment.Spec
	data Data
}

// Build decides the experiment on the data read for it.
func Build(spec *experiment.Spec, data Data) (*Report, error) {
	o := abtest.Options{MaxDurationReached: data.MaxDurationReached()}
	res, err := abtest.Decide(spec.Design(), data.Looks, o)
	if err != nil {
		return nil, fmt.Errorf("experiment %s: %w", spec.Name, err)
	}
	hist, err := abtest.History(spec.Design(), data.Looks, o)
	if err != nil {
		return nil, fmt.Errorf("experiment %s: %w", spec.Name, err)
	}
	r := &Report{Experiment: spec.Name, Control: spec.Control, Treatment: spec.Treatment, Namespace: data.Window.Namespace,
		Start: data.Window.Start, End: data.Window.End, Step: data.Window.Step.String(), Result: res, History: hist, spec: spec, data: data}
	for i := range 2 {
		r.P95[i] = Quantile(0.95, data.Latency[i])
		if math.IsNaN(r.P95[i]) {
			r.P95[i] = -1
		}
	}
	return r, nil
}

// WriteText writes the report for a person: the verdict first, then the
// arms, the tests, and how the always-valid evidence moved.
func (r *Report) WriteText(w io.Writer) error {
	res := r.Result
	var b strings.Builder
	fmt.Fprintf(&b, "experiment %s: %s (control) vs %s (treatment), split %d/%d, namespace %s\n",
		r.Experiment, r.Control, r.Treatment, r.spec.Split.Control, r.spec.Split.Treatment, r.Namespace)
	fmt.Fprintf(&b, "window %s to %s (%s), %d looks every %s\n\n", r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339),
		r.End.Sub(r.Start).Round(time.Second), res.Looks, r.Step)
	fmt.Fprintf(&b, "VERDICT: %s\n  %s\n", strings.ReplaceAll(strings.ToUpper(string(res.Verdict)), "_", " "), res.Reason)
	if res.Verdict == abtest.KeepRunning && res.MoreFeedback > 0 {
		fmt.Fprintf(&b, "  about %d more feedback events to the planned %.0f\n", res.MoreFeedback, math.Ceil(res.Plan.Total()))
	}
	b.WriteString("\n")

	last := abtest.Look{}
	if n := len(r.data.Looks); n > 0 {
		last = r.data.Looks[n-1]
	}
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "arm\tversion\tfeedback\tcorrect\taccuracy\trequests\t5xx rate\tslow share\tp95 latency\t")
	for i, a := range []abtest.Arm{last.Control, last.Treatment} {
		name, v := "control", r.Control
		if i == 1 {
			name, v = "treatment", r.Treatment
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t\n", name, v, a.Feedback, a.Correct, ratio(a.Correct, a.Feedback),
			a.Requests, percent(a.Errors, a.Requests), percent(a.Slow, a.Requests), seconds(r.P95[i]))
	}
	tw.Flush()
	fmt.Fprintf(&b, "  (slow: over %gs; the plan needs %.0f feedback events, %.0f per arm at %g:%g)\n\n",
		r.spec.Guardrails.Latency.ThresholdSeconds, math.Ceil(res.Plan.Total()), math.Ceil(res.Plan.Control), r.spec.Design().Split[0], r.spec.Design().Split[1])

	b.WriteString("tests (treatment minus control)\n")
	if s := res.Sequential; s != nil {
		fmt.Fprintf(&b, "  accuracy, always-valid mSPRT:  diff %+.4f, p %.4g, interval [%s, %s]  (decides)\n", s.Diff, s.PValue, bound(s.Low), bound(s.High))
	}
	if z := res.ZTest; z != nil {
		fmt.Fprintf(&b, "  accuracy, fixed-horizon z-test: diff %+.4f, p %.4g, interval [%s, %s]  (valid once, at the planned sample)\n", z.Diff, z.PValue, bound(z.Low), bound(z.High))
	}
	if s := res.SRM; s != nil {
		flag := "ok"
		if s.Flagged {
			flag = "MISMATCH"
		}
		fmt.Fprintf(&b, "  sample ratio: feedback %d / %d, expected %.0f / %.0f, chi-square p %.3g: %s\n", s.Observed[0], s.Observed[1], s.Expected[0], s.Expected[1], s.PValue, flag)
	}
	for _, g := range res.Guardrails {
		fmt.Fprintf(&b, "  guardrail %s: %s\n", g.Name, g.Reason)
	}
	b.WriteString("\n")

	if len(r.History) > 0 {
		b.WriteString("how the always-valid evidence moved\n")
		tw = tabwriter.NewWriter(&b, 2, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "look\ttime\tfeedback c/t\tdiff\tp (always valid)\tinterval\tverdict\t")
		for _, i := range sample(len(r.History), 15) {
			p := r.History[i]
			fmt.Fprintf(tw, "%d\t%s\t%d/%d\t%+.4f\t%.4g\t[%s, %s]\t%s\t\n", p.Look, p.At.UTC().Format("01-02 15:04:05"), p.Feedback[0], p.Feedback[1],
				p.Diff, p.PValue, bound(p.Low), bound(p.High), p.Verdict)
		}
		tw.Flush()
		b.WriteString("\n")
		b.WriteString(plotText(r.History, 64, 12))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sample picks at most n indexes of m, evenly, always the first and last.
func sample(m, n int) []int {
	if m <= n {
		out := make([]int, m)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, 0, n)
	for k := range n {
		out = append(out, int(math.Round(float64(k)*float64(m-1)/float64(n-1))))
	}
	return out
}

func ratio(x, n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.4f", float64(x)/float64(n))
}

func percent(x, n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f%%", 100*float64(x)/float64(n))
}

func seconds(s float64) string {
	if s < 0 {
		return "-"
	}
	return (time.Duration(s * float64(time.Second))).Round(10 * time.Microsecond).String()
}

func bound(x *float64) string {
	if x == nil {
		return "unbounded"
	}
	return fmt.Sprintf("%+.4f", *x)
}

// plotText draws the always-valid interval (| from low to high) and the
// estimate (*) at each of width looks, with 0 and ±MDE marked: how the
// evidence narrowed onto an answer, in a terminal.
func plotText(h []abtest.Point, width, height int) string {
	lo, hi := 0.0, 0.0
	for _, p := range h {
		lo, hi = math.Min(lo, p.Diff), math.Max(hi, p.Diff)
		if p.Low != nil {
			lo = math.Min(lo, *p.Low)
		}
		if p.High != nil {
			hi = math.Max(hi, *p.High)
		}
	}
	if hi-lo < 1e-9 {
		hi, lo = hi+0.01, lo-0.01
	}
	grid := make([][]byte, height)
	for i := range grid {
		grid[i] = []byte(strings.Repeat(" ", width))
	}
	row := func(v float64) int {
		r := int(math.Round((hi - v) / (hi - lo) * float64(height-1)))
		return min(max(r, 0), height-1)
	}
	zero := row(0)
	for x := range width {
		grid[zero][x] = '-'
	}
	for x := range width {
		p := h[x*len(h)/width] // each look gets width/len(h) columns, or every look a column
		if len(h) > width {
			p = h[sample(len(h), width)[x]]
		}
		top, bottom := 0, height-1
		if p.High != nil {
			top = row(*p.High)
		}
		if p.Low != nil {
			bottom = row(*p.Low)
		}
		for y := top; y <= bottom; y++ {
			grid[y][x] = '|'
		}
		grid[row(p.Diff)][x] = '*'
	}
	var b strings.Builder
	fmt.Fprintf(&b, "always-valid interval (|) and estimate (*) of treatment minus control, look %d to %d; --- is 0\n", h[0].Look, h[len(h)-1].Look)
	for y, line := range grid {
		label := "        "
		switch y {
		case 0:
			label = fmt.Sprintf("%+7.3f ", hi)
		case zero:
			label = fmt.Sprintf("%+7.3f ", 0.0)
		case height - 1:
			label = fmt.Sprintf("%+7.3f ", lo)
		}
		b.WriteString(label + string(line) + "\n")
	}
	return b.String()
}
