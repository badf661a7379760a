package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/evaluate"
	"github.com/ml-platform/platform/internal/model"
	"github.com/ml-platform/platform/internal/registry"
)

// command is one subcommand: the words that name it, its synopsis (after the
// words) and what it does, for the usage text, and the function that runs it.
type command struct {
	words    []string
	synopsis string
	summary  string
	run      func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error
}

// commands is every subcommand; the usage text is made from it.
var commands = []command{
	{[]string{"verify"}, "[flags]", "render every Kustomize entry point, run the checks in order (Kyverno policies, Pod Security, AppProjects, network matrix, ...), and validate every object on a real kube-apiserver", verifyCmd},
	{[]string{"diff"}, "ENV1 ENV2", "what differs between two environments, object by object", diffCmd},
	{[]string{"bootstrap"}, "--repo URL --revision REV [--kubeconfig FILE]", "print (or apply) the root Argo CD Application for a fork", bootstrapCmd},
	{[]string{"model", "evaluate"}, "[flags]", "score every model version on the labelled set; --write records the figures in each model.json, --check fails when the recorded figures are stale", modelEvaluate},
	{[]string{"slo", "generate"}, "[--check]", "generate Prometheus SLO recording and burn-rate alert rules from config/slos/ with Sloth; --check fails when the committed rules are stale", sloGenerate},
	{[]string{"rollout", "status"}, "[flags] ENV", "the canary of an environment's ml-inference: phase, step, stable and canary ReplicaSets, every analysis metric with its last measurement and the judge's reason", rolloutCmd("status")},
	{[]string{"rollout", "promote"}, "[--full] [flags] ENV", "move a paused canary on (a pause, or an inconclusive analysis: the operator's decision); --full skips every remaining step and analysis", rolloutCmd("promote")},
	{[]string{"rollout", "abort"}, "[flags] ENV", "abort the canary: every pod back to the stable version (then revert the Git change that started it)", rolloutCmd("abort")},
	{[]string{"rollout", "retry"}, "[flags] ENV", "start an aborted canary again from its first step (a false alarm; docs/runbooks/canary-aborted.md)", rolloutCmd("retry")},
	{[]string{"dashboards", "generate"}, "[--check]", "generate the Grafana dashboards (JSON) from internal/dashboards and check every query against the exported metrics and SLO rules; --check fails when the committed dashboards are stale", dashboardsGenerate},
	{[]string{"judge", "serve"}, "--prometheus-url URL [--addr :8080] [flags]", "serve the canary judge for Argo Rollouts' web metric provider: GET /v1/judge?namespace=NS&canary=HASH&stable=HASH compares the canary's 5xx rate and latency with its stable's in VictoriaMetrics", judgeServe},
}

// usage is the top-level help, one entry per command.
func usage() string {
	var b strings.Builder
	b.WriteString("platformctl: the ML platform's operator CLI\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  platformctl %s %s\n", strings.Join(c.words, " "), c.synopsis)
		for _, line := range wrap(c.summary, 88) {
			fmt.Fprintf(&b, "      %s\n", line)
		}
	}
	b.WriteString("\nRun \"platformctl COMMAND -h\" for a command's flags.\n")
	return b.String()
}

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	for _, c := range commands {
		if len(args) >= len(c.words) && slices.Equal(args[:len(c.words)], c.words) {
			err := c.run(ctx, args[len(c.words):], getenv, stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage())
		return nil
	}
	fmt.Fprint(stderr, usage())
	return fmt.Errorf("unknown command %q", strings.Join(args[:min(len(args), 2)], " "))
}

func modelEvaluate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl model evaluate", stderr)
	modelsDir := fs.String("models-dir", "models", "directory with one subdirectory per model version")
	dataset := fs.String("dataset", filepath.Join("data", "sentiment", "eval.csv"), "labelled CSV (text,label[,category])")
	write := fs.Bool("write", false, "record accuracy and macro-F1 in each version's model.json")
	check := fs.Bool("check", false, "fail if a version's recorded figures differ from the measured ones")
	showErrors := fs.Int("show-errors", 0, "print up to this many misclassified examples per version")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	ds, err := evaluate.LoadCSV(*dataset)
	if err != nil {
		return err
	}
	versions, err := registry.Directory{Root: *modelsDir}.Load(ctx)
	if err != nil {
		return err
	}
	if len(versions) == 0 {
		return fmt.Errorf("no model versions in %s", *modelsDir)
	}
	fmt.Fprintf(stdout, "dataset %s: %d examples, sha256 %s\n", ds.Path, len(ds.Examples), ds.SHA256[:12])
	var stale []error
	for _, v := range versions {
		res := evaluate.Run(v.Model, ds)
		evaluate.Report(stdout, v.Meta.Version, res)
		for i, miss := range res.Errors {
			if i >= *showErrors {
				break
			}
			fmt.Fprintf(stdout, "    line %d [%s] gold %s, got %s %.2f: %s\n", miss.Line, miss.Category, miss.Label, miss.Predicted.Sentiment, miss.Predicted.Confidence, miss.Text)
		}
		measured := model.Metrics{
			Accuracy:      round4(res.Accuracy),
			F1Score:       round4(res.MacroF1),
			Dataset:       filepath.ToSlash(ds.Path),
			DatasetSHA256: ds.SHA256,
			Samples:       res.Samples,
		}
		path := filepath.Join(v.Dir, model.MetadataFile)
		if *check {
			if err := compareMetrics(path, v.Meta.Metrics, measured); err != nil {
				stale = append(stale, err)
			}
		}
		if *write {
			measured.EvaluatedAt = time.Now().UTC().Truncate(time.Second)
			meta := v.Meta
			meta.Metrics = &measured
			if err := model.WriteMetadata(path, meta); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "  wrote metrics to %s\n", path)
		}
	}
	if err := errors.Join(stale...); err != nil {
		return fmt.Errorf("%w\nrun `make evaluate` to measure and record them", err)
	}
	return nil
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// compareMetrics reports recorded figures that were not measured on this
// dataset or differ from the measurement.
func compareMetrics(path string, recorded *model.Metrics, measured model.Metrics) error {
	switch {
	case recorded == nil:
		return fmt.Errorf("%s: field \"metrics\" is missing", path)
	case recorded.DatasetSHA256 != measured.DatasetSHA256:
		return fmt.Errorf("%s: metrics were measured on a different dataset (sha256 %.12s, now %.12s)", path, recorded.DatasetSHA256, measured.DatasetSHA256)
	case recorded.Accuracy != measured.Accuracy || recorded.F1Score != measured.F1Score || recorded.Samples != measured.Samples:
		return fmt.Errorf("%s: metrics are stale: recorded accuracy %.4f f1 %.4f on %d samples, measured %.4f %.4f on %d",
			path, recorded.Accuracy, recorded.F1Score, recorded.Samples, measured.Accuracy, measured.F1Score, measured.Samples)
	}
	return nil
}
