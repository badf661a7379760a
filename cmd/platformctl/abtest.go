package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/ml-platform/platform/internal/abtest"
	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/experiment"
)

// analyzeInput is `platformctl abtest analyze --input FILE`: counts from
// anywhere (a notebook, another system), the first arm the control.
type analyzeInput struct {
	Alpha         *float64        `json:"alpha"`
	Power         *float64        `json:"power"`
	MDE           *float64        `json:"mde"`
	Baseline      float64         `json:"baseline"`
	ExpectedSplit []float64       `json:"expected_split"`
	Arms          []analyzeArm    `json:"arms"`
	Looks         []analyzeLook   `json:"looks"`
	Guardrails    *analyzeMargins `json:"guardrails"`
}

type analyzeArm struct {
	Name         string `json:"name"`
	N            int64  `json:"n"`
	Successes    int64  `json:"successes"`
	Requests     int64  `json:"requests"`
	Errors       int64  `json:"errors"`
	SlowRequests int64  `json:"slow_requests"`
}

type analyzeLook struct {
	Arms []analyzeArm `json:"arms"`
}

type analyzeMargins struct {
	Alpha            float64 `json:"alpha"`
	ErrorMargin      float64 `json:"error_margin"`
	LatencyMargin    float64 `json:"latency_margin"`
	LatencyThreshold float64 `json:"latency_threshold_seconds"`
}

// The defaults of the optional fields; the output's "design" shows what was
// used.
const (
	defaultAnalyzePower = 0.8
	defaultAnalyzeMDE   = 0.03
)

type analyzeDesign struct {
	Alpha         float64    `json:"alpha"`
	Power         float64    `json:"power"`
	MDE           float64    `json:"mde"`
	Baseline      float64    `json:"baseline,omitempty"`
	ExpectedSplit [2]float64 `json:"expected_split"`
	Tau2          float64    `json:"tau2"`
}

type analyzeOutput struct {
	Control   string        `json:"control"`
	Treatment string        `json:"treatment"`
	Design    analyzeDesign `json:"design"`
	abtest.Result
}

// readAnalyzeInput decodes the file strictly; errors name the file and the
// field.
func readAnalyzeInput(path string) (abtest.Design, []abtest.Look, [2]string, error) {
	var names [2]string
	data, err := os.ReadFile(path)
	if err != nil {
		return abtest.Design{}, nil, names, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var in analyzeInput
	if err := dec.Decode(&in); err != nil {
		return abtest.Design{}, nil, names, fmt.Errorf("%s: %w", path, err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	if in.Alpha == nil {
		return abtest.Design{}, nil, names, fail(`field "alpha" is required, e.g. 0.05`)
	}
	if len(in.ExpectedSplit) != 2 {
		return abtest.Design{}, nil, names, fail(`field "expected_split" must hold 2 shares (control, treatment), got %d`, len(in.ExpectedSplit))
	}
	if len(in.Arms) != 2 {
		return abtest.Design{}, nil, names, fail(`field "arms" must hold 2 arms (control first, then treatment), got %d`, len(in.Arms))
	}
	d := abtest.Design{Alpha: *in.Alpha, Power: defaultAnalyzePower, MDE: defaultAnalyzeMDE, Baseline: in.Baseline,
		Split: [2]float64{in.ExpectedSplit[0], in.ExpectedSplit[1]}}
	if in.Power != nil {
		d.Power = *in.Power
	}
	if in.MDE != nil {
		d.MDE = *in.MDE
	}
	if g := in.Guardrails; g != nil {
		d.Guardrails = abtest.Guardrails{Alpha: g.Alpha, ErrorMargin: g.ErrorMargin, LatencyMargin: g.LatencyMargin, LatencyThreshold: g.LatencyThreshold}
	}
	if _, err := abtest.NewAnalyzer(d); err != nil {
		return abtest.Design{}, nil, names, fail("%v", err)
	}
	toLook := func(field string, arms []analyzeArm) (abtest.Look, error) {
		if len(arms) != 2 {
			return abtest.Look{}, fail("field %q must hold 2 arms, got %d", field, len(arms))
		}
		var l abtest.Look
		for i, a := range arms {
			if a.Name == "" {
				return l, fail("field %s[%d].name is required", field, i)
			}
			if a.N < 0 || a.Successes < 0 || a.Successes > a.N {
				return l, fail("field %s[%d]: successes %d must be in [0, n = %d]", field, i, a.Successes, a.N)
			}
			if a.Requests < 0 || a.Errors < 0 || a.SlowRequests < 0 || a.Errors > a.Requests || a.SlowRequests > a.Requests {
				return l, fail("field %s[%d]: errors %d and slow_requests %d must be in [0, requests = %d]", field, i, a.Errors, a.SlowRequests, a.Requests)
			}
			arm := abtest.Arm{Feedback: a.N, Correct: a.Successes, Requests: a.Requests, Errors: a.Errors, Slow: a.SlowRequests}
			if i == 0 {
				l.Control = arm
			} else {
				l.Treatment = arm
			}
		}
		return l, nil
	}
	var looks []abtest.Look
	for i, l := range in.Looks {
		look, err := toLook(fmt.Sprintf("looks[%d].arms", i), l.Arms)
		if err != nil {
			return abtest.Design{}, nil, names, err
		}
		looks = append(looks, look)
	}
	last, err := toLook("arms", in.Arms)
	if err != nil {
		return abtest.Design{}, nil, names, err
	}
	names = [2]string{in.Arms[0].Name, in.Arms[1].Name}
	return d, append(looks, last), names, nil
}

func abtestAnalyze(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl abtest analyze", stderr)
	input := fs.String("input", "", `JSON counts: {"alpha": 0.05, "expected_split": [0.5, 0.5], "arms": [{"name": "v2", "n": 1000, "successes": 810}, {"name": "v3", ...}]}, the control first; optional "power" (0.8), "mde" (0.03), "baseline", per arm "requests", "errors", "slow_requests", "guardrails" {"error_margin", "latency_margin"} and "looks" (earlier cumulative arms, oldest first)`)
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	if *input == "" {
		return errors.New("usage: platformctl abtest analyze --input FILE")
	}
	d, looks, names, err := readAnalyzeInput(*input)
	if err != nil {
		return err
	}
	res, err := abtest.Decide(d, looks, abtest.Options{})
	if err != nil {
		return fmt.Errorf("%s: %w", *input, err)
	}
	mix, _ := d.Mixture()
	out := analyzeOutput{Control: names[0], Treatment: names[1], Result: res,
		Design: analyzeDesign{Alpha: d.Alpha, Power: d.Power, MDE: d.MDE, Baseline: d.Baseline, ExpectedSplit: d.Split, Tau2: mix.Tau2}}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// abtestPlan prints the sample an experiment needs.
func abtestPlan(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl abtest plan NAME", stderr)
	dir := fs.String("experiments", experiment.Dir, "directory of experiment files")
	name, rest := positionalArgs(args)
	if err := config.Parse(fs, "PLATFORMCTL", rest, getenv); err != nil {
		return err
	}
	if name == "" {
		return errors.New("usage: platformctl abtest plan NAME")
	}
	s, err := experiment.Find(*dir, name)
	if err != nil {
		return err
	}
	p, err := s.Design().PlanFor(s.Primary.Baseline)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Path, err)
	}
	fmt.Fprintf(stdout, "%s: %s (control) vs %s (treatment), split %d/%d\n", s.Name, s.Control, s.Treatment, s.Split.Control, s.Split.Treatment)
	fmt.Fprintf(stdout, "  detects a %+g accuracy lift on %g at alpha %g with power %g:\n", s.Primary.MinimumDetectableEffect, s.Primary.Baseline, s.Alpha, s.Power)
	fmt.Fprintf(stdout, "  %.0f feedback events: %.0f on %s, %.0f on %s (always valid: look as often as you like)\n",
		math.Ceil(p.Total()), math.Ceil(p.Control), s.Control, math.Ceil(p.Treatment), s.Treatment)
	fmt.Fprintf(stdout, "  (a fixed-horizon z-test, read once at the end, would need %.0f on %s)\n", math.Ceil(p.FixedHorizonControl), s.Control)
	fmt.Fprintf(stdout, "  maximum duration %s: at fewer than %.0f feedback events a day it ends inconclusive\n", s.MaxDur, math.Ceil(p.Total()/s.MaxDuration().Hours()*24))
	return nil
}

// positionalArgs splits off the positional arguments before the first flag.
func positionalArgs(args []string) (string, []string) {
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		return args[0], args[1:]
	}
	return "", args
}
