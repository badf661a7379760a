package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/ml-platform/platform/internal/abreport"
	"github.com/ml-platform/platform/internal/abrollout"
	"github.com/ml-platform/platform/internal/abtest"
	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/experiment"
	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
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
	af := addAbtestFlags(fs)
	name, rest := positionalArgs(args)
	if err := config.Parse(fs, "PLATFORMCTL", rest, getenv); err != nil {
		return err
	}
	if name == "" {
		return errors.New("usage: platformctl abtest plan NAME")
	}
	_, s, err := af.load(name)
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

// abtestFlags are what the live commands share.
type abtestFlags struct {
	root, experiments *string
}

func addAbtestFlags(fs *flag.FlagSet) abtestFlags {
	return abtestFlags{
		root:        fs.String("root", ".", "repository root"),
		experiments: fs.String("experiments", experiment.Dir, "directory of experiment files, relative to --root"),
	}
}

func (f abtestFlags) load(name string) (*gitops.Repository, *experiment.Spec, error) {
	repo, err := gitops.Load(*f.root)
	if err != nil {
		return nil, nil, err
	}
	dir := *f.experiments
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(*f.root, dir)
	}
	spec, err := experiment.Find(dir, name)
	return repo, spec, err
}

// reportFlags read the experiment's data from VictoriaMetrics.
type reportFlags struct {
	url, namespace, env *string
	from, until         *string
	step                *time.Duration
}

func addReportFlags(fs *flag.FlagSet) reportFlags {
	return reportFlags{
		url:       fs.String("prometheus-url", "http://localhost:8428", "Prometheus HTTP API of the metrics (VictoriaMetrics: kubectl -n observability port-forward svc/victoria-metrics 8428)"),
		namespace: fs.String("namespace", "", "namespace of the experiment's series (default: the namespace of the environment running it)"),
		env:       fs.String("env", "", "environment to read when the experiment runs in several (default: the only one)"),
		from:      fs.String("from", "", "window start, RFC 3339 (default: when model_traffic_weight_percent first showed the split)"),
		until:     fs.String("until", "", "window end, RFC 3339 (default: now)"),
		step:      fs.Duration("step", time.Minute, "time between looks (grows to keep at most 500)"),
	}
}

// read decides the experiment on the metrics of its namespace.
func (f reportFlags) read(ctx context.Context, repo *gitops.Repository, spec *experiment.Spec) (*abreport.Report, error) {
	ns := *f.namespace
	if ns == "" {
		envs, err := abrollout.Running(repo, spec.Name)
		if err != nil {
			return nil, err
		}
		if *f.env != "" {
			envs = slices.DeleteFunc(envs, func(s abrollout.State) bool { return s.Env != *f.env })
		}
		switch len(envs) {
		case 0:
			return nil, fmt.Errorf("experiment %s runs in no environment%s (no %s names it); pass --namespace to read one anyway", spec.Name, map[bool]string{true: " " + *f.env}[*f.env != ""], abrollout.PatchFile)
		case 1:
		default:
			return nil, fmt.Errorf("experiment %s runs in %d environments; choose one with --env", spec.Name, len(envs))
		}
		objs, err := render.Build(envs[0].Dir)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if o.GetName() == abrollout.Workload && (o.GetKind() == "Deployment" || o.GetKind() == "Rollout") {
				ns = o.GetNamespace()
			}
		}
		if ns == "" {
			return nil, fmt.Errorf("environment %s renders no %s workload", envs[0].Env, abrollout.Workload)
		}
	}
	w := abreport.Window{Namespace: ns, Control: spec.Control, Treatment: spec.Treatment, TreatmentPercent: float64(spec.Split.Treatment),
		MaxDuration: spec.MaxDuration(), Step: *f.step, LatencyThreshold: spec.Guardrails.Latency.ThresholdSeconds}
	for _, t := range []struct {
		flag, value string
		into        *time.Time
	}{{"--from", *f.from, &w.Start}, {"--until", *f.until, &w.End}} {
		if t.value == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.value)
		if err != nil {
			return nil, fmt.Errorf("%s %q: want RFC 3339, e.g. 2026-03-01T09:00:00Z", t.flag, t.value)
		}
		*t.into = v
	}
	client, err := promapi.NewClient(promapi.Config{Address: *f.url})
	if err != nil {
		return nil, fmt.Errorf("--prometheus-url %s: %w", *f.url, err)
	}
	data, err := abreport.Read(ctx, promv1.NewAPI(client), w)
	if err != nil {
		return nil, err
	}
	return abreport.Build(spec, data)
}

func abtestReport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl abtest report NAME", stderr)
	af, rf := addAbtestFlags(fs), addReportFlags(fs)
	plot := fs.String("plot", "", "also draw the always-valid interval and p-value over time to this PNG file")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	name, rest := positionalArgs(args)
	if err := config.Parse(fs, "PLATFORMCTL", rest, getenv); err != nil {
		return err
	}
	if name == "" {
		return errors.New("usage: platformctl abtest report NAME [--prometheus-url URL] [--namespace NS]")
	}
	repo, spec, err := af.load(name)
	if err != nil {
		return err
	}
	rep, err := rf.read(ctx, repo, spec)
	if err != nil {
		return err
	}
	if *plot != "" {
		if err := rep.WritePNG(*plot); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if *plot != "" {
		fmt.Fprintf(stdout, "\nplot: %s\n", *plot)
	}
	return nil
}

// commitFlags say whether a change becomes a commit on a new branch.
type commitFlags struct {
	noCommit *bool
	branch   *string
}

func addCommitFlags(fs *flag.FlagSet) commitFlags {
	return commitFlags{
		noCommit: fs.Bool("no-commit", false, "write the files only; no branch, no commit"),
		branch:   fs.String("branch", "", "name of the new branch (default: abtest/NAME/<what>)"),
	}
}

// apply commits c on a new branch unless --no-commit, and says what to do
// next.
func (f commitFlags) apply(ctx context.Context, root string, c abrollout.Change, stdout io.Writer) error {
	for _, e := range c.Envs {
		fmt.Fprintf(stdout, "%s (namespace %s): %s=%s\n", e.Env, e.Namespace, abrollout.EnvVar, e.Traffic)
	}
	if *f.noCommit {
		fmt.Fprintf(stdout, "wrote %s (not committed)\n", strings.Join(c.Files, ", "))
		return nil
	}
	branch := c.Branch
	if *f.branch != "" {
		branch = *f.branch
	}
	id, err := abrollout.Git{Root: root}.CommitOnBranch(ctx, branch, c.Message, c.Files)
	if err != nil {
		return fmt.Errorf("the files are written but not committed: %w", err)
	}
	fmt.Fprintf(stdout, "committed %.12s on new branch %s: %s\n", id, branch, strings.Join(c.Files, ", "))
	fmt.Fprintf(stdout, "next: git push -u origin %s, and open a pull request; Argo CD applies it once merged\n", branch)
	return nil
}

func abtestStart(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl abtest start NAME ENV", stderr)
	af, cf := addAbtestFlags(fs), addCommitFlags(fs)
	name, rest := positionalArgs(args)
	env, rest := positionalArgs(rest)
	if err := config.Parse(fs, "PLATFORMCTL", rest, getenv); err != nil {
		return err
	}
	if name == "" || env == "" {
		return errors.New("usage: platformctl abtest start NAME ENV")
	}
	repo, spec, err := af.load(name)
	if err != nil {
		return err
	}
	if err := checkClean(ctx, *af.root, !*cf.noCommit, repo, env); err != nil {
		return err
	}
	c, err := abrollout.Start(repo, spec, env)
	if err != nil {
		return err
	}
	return cf.apply(ctx, *af.root, c, stdout)
}

// checkClean refuses to commit over uncommitted changes in the overlays the
// command writes.
func checkClean(ctx context.Context, root string, committing bool, repo *gitops.Repository, envs ...string) error {
	if !committing {
		return nil
	}
	var dirs []string
	for _, name := range envs {
		e, err := repo.Environment(name)
		if err != nil {
			return err
		}
		dirs = append(dirs, repo.Rel(e.Path))
	}
	return abrollout.Git{Root: root}.Clean(ctx, dirs...)
}

func abtestPromote(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl abtest promote NAME", stderr)
	af, cf, rf := addAbtestFlags(fs), addCommitFlags(fs), addReportFlags(fs)
	winner := fs.String("winner", "", "promote this version without reading the verdict (an operator's decision, recorded in the commit)")
	name, rest := positionalArgs(args)
	if err := config.Parse(fs, "PLATFORMCTL", rest, getenv); err != nil {
		return err
	}
	if name == "" {
		return errors.New("usage: platformctl abtest promote NAME [--winner VERSION]")
	}
	repo, spec, err := af.load(name)
	if err != nil {
		return err
	}
	why := fmt.Sprintf("Promoted by the operator's decision (--winner %s), not by a verdict.", *winner)
	if *winner == "" {
		rep, err := rf.read(ctx, repo, spec)
		if err != nil {
			return fmt.Errorf("reading the verdict: %w (or name the version with --winner)", err)
		}
		switch rep.Result.Verdict {
		case abtest.TreatmentWins:
			*winner = spec.Treatment
		case abtest.ControlWins:
			*winner = spec.Control
		default:
			return fmt.Errorf("no winner to promote: the verdict is %s: %s\n(abort to keep the control, or name the version with --winner)", rep.Result.Verdict, rep.Result.Reason)
		}
		why = fmt.Sprintf("Verdict %s over %s to %s in namespace %s: %s", rep.Result.Verdict,
			rep.Start.UTC().Format(time.RFC3339), rep.End.UTC().Format(time.RFC3339), rep.Namespace, rep.Result.Reason)
	}
	envs, err := abrollout.Running(repo, spec.Name)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range envs {
		names = append(names, e.Env)
	}
	if err := checkClean(ctx, *af.root, !*cf.noCommit, repo, names...); err != nil {
		return err
	}
	// The registry alias is `platformctl model promote`'s (the lifecycle
	// work); this command writes Git and says how to move it.
	c, err := abrollout.Promote(ctx, repo, spec, *winner, why, nil)
	if err != nil {
		return err
	}
	if err := cf.apply(ctx, *af.root, c, stdout); err != nil {
		return err
	}
	for _, e := range c.Envs {
		alias, err := abrollout.AliasOf(repo, e.Env)
		if err != nil {
			return err
		}
		if alias != "" {
			fmt.Fprintf(stdout, "then move the registry alias %s follows: platformctl model promote %s --alias %s --reason %q\n", e.Env, *winner, alias, "abtest "+spec.Name)
		}
	}
	return nil
}

func abtestAbort(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl abtest abort NAME", stderr)
	af, cf := addAbtestFlags(fs), addCommitFlags(fs)
	reason := fs.String("reason", "aborted by the operator", "why, for the commit message")
	name, rest := positionalArgs(args)
	if err := config.Parse(fs, "PLATFORMCTL", rest, getenv); err != nil {
		return err
	}
	if name == "" {
		return errors.New("usage: platformctl abtest abort NAME [--reason WHY]")
	}
	repo, spec, err := af.load(name)
	if err != nil {
		return err
	}
	envs, err := abrollout.Running(repo, spec.Name)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range envs {
		names = append(names, e.Env)
	}
	if err := checkClean(ctx, *af.root, !*cf.noCommit, repo, names...); err != nil {
		return err
	}
	c, err := abrollout.Abort(repo, spec, *reason)
	if err != nil {
		return err
	}
	return cf.apply(ctx, *af.root, c, stdout)
}
