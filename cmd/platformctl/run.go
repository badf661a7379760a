package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/evaluate"
	"github.com/ml-platform/platform/internal/generate"
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
	{[]string{"bootstrap"}, "--repo URL --revision REV [--path DIR] [--kubeconfig FILE [--install-argocd] [--secrets] [--repo-token-file F]]", "print (or apply) the root Argo CD Application for a fork; with --kubeconfig also install Argo CD, generate the local secret store and store a private fork's token first", bootstrapCmd},
	{[]string{"render"}, "DIR", "print a kustomization as Argo CD renders it, remote bases resolved from the pinned Go modules (platform.yaml upstreams)", renderCmd},
	{[]string{"image", "build"}, "[--platforms P,...] [--tag REF] [--out DIR]", "build the container image without a container runtime: ml-inference and platformctl on scratch, an OCI index (linux/amd64, linux/arm64) as an OCI layout, and a tarball kind can load", imageBuild},
	{[]string{"image", "tag"}, "--env ENV | --dir DIR", "print the ml-inference tag an environment (or a kustomization, such as ml-platform's) deploys", imageTag},
	{[]string{"image", "set-tag"}, "--env ENV --tag TAG", "set the ml-inference tag an environment deploys (what deploy and promotion pull requests change)", imageSetTag},
	{[]string{"model", "evaluate"}, "[flags]", "score every model version on the held-out set and the SemEval validation split; --write records the figures in each model.json, --check fails when they are stale", modelEvaluate},
	{[]string{"model", "train"}, "[flags]", "train the v3 model (hashed-logreg) from the SemEval tweets and the dev set; writes models/v3 and prints its metrics; --check retrains from the recorded configuration and compares", modelTrain},
	{[]string{"model", "register"}, "--from-dir DIR [--run-id ID] [--mlflow-uri URL] [--model NAME]", "register an artifact directory in MLflow: a run with its params, metrics and files (unless --run-id names one), then a model version tagged with the artifact's digest; a digest already registered is reported, not registered twice", modelRegister},
	{[]string{"model", "promote"}, "VERSION --alias staging|production --reason WHY [--actor WHO]", "point an alias at a version (servers following it switch on their next poll) and record who, when, from which version and why", modelPromote},
	{[]string{"model", "rollback"}, "--alias staging|production --reason WHY [--actor WHO]", "point an alias back at the version it held before the current one, recorded as a move too", modelRollback},
	{[]string{"model", "history"}, "[--alias ALIAS] [--at TIME]", "every recorded alias move, oldest first; --at says which version each alias held then; warns about moves made outside platformctl", modelHistory},
	{[]string{"model", "seed"}, "--models-dir DIR [--alias ALIAS=VERSION]...", "register every artifact of a models directory (each found by digest if it already is) and set each alias that points nowhere yet; never moves an alias, so it can run on every sync", modelSeed},
	{[]string{"model", "list"}, "[--mlflow-uri URL] [--model NAME]", "every version of the registered model with its aliases, tags and run metrics", modelList},
	{[]string{"slo", "generate"}, "[--check]", "generate Prometheus SLO recording and burn-rate alert rules from config/slos/ with Sloth; --check fails when the committed rules are stale", sloGenerate},
	{[]string{"abtest", "plan"}, "NAME", "the sample an experiment of config/experiments needs, always valid and fixed-horizon", abtestPlan},
	{[]string{"abtest", "analyze"}, "--input FILE", "the verdict on counts in a JSON file: z-test, always-valid mSPRT p-value and interval, sample-ratio check, guardrails", abtestAnalyze},
	{[]string{"abtest", "start"}, "NAME ENV", "write the experiment's split into the environment's overlay (patches/traffic.yaml), as one commit on a new branch", abtestStart},
	{[]string{"abtest", "report"}, "NAME [--prometheus-url URL] [--plot FILE]", "the verdict with its evidence, from the per-version feedback, errors and latency in VictoriaMetrics over the experiment's window", abtestReport},
	{[]string{"abtest", "promote"}, "NAME [--winner VERSION]", "write the verdict's winner at 100% wherever the experiment runs, as one commit on a new branch", abtestPromote},
	{[]string{"abtest", "abort"}, "NAME [--reason WHY]", "put the control back at 100% wherever the experiment runs, as one commit on a new branch", abtestAbort},
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
	dataset := fs.String("dataset", filepath.Join("data", "sentiment", "eval.csv"), "held-out labelled CSV (text,label[,category])")
	validation := fs.String("validation", defaultSemEval, "SemEval tweets (TSV) holding the validation split; empty to skip")
	validationSplit := fs.String("validation-split", defaultValidationSplit, "the split of --validation to score")
	write := fs.Bool("write", false, "record the figures in each version's model.json")
	check := fs.Bool("check", false, "write nothing; fail if --write would change a version's model.json (stale figures)")
	showErrors := fs.Int("show-errors", 0, "print up to this many misclassified held-out examples per version")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	ds, err := evaluate.LoadCSV(*dataset)
	if err != nil {
		return err
	}
	var valid *evaluate.Dataset
	if *validation != "" {
		tweets, err := evaluate.LoadSemEval(*validation)
		if err != nil {
			return err
		}
		valid = tweets.Subset(func(split string) bool { return split == *validationSplit })
		if len(valid.Examples) == 0 {
			return fmt.Errorf("%s has no split %q", *validation, *validationSplit)
		}
	}
	versions, err := registry.Directory{Root: *modelsDir}.Load(ctx)
	if err != nil {
		return err
	}
	if len(versions) == 0 {
		return fmt.Errorf("no model versions in %s", *modelsDir)
	}
	fmt.Fprintf(stdout, "held-out %s: %d examples, sha256 %s\n", ds.Path, len(ds.Examples), ds.SHA256[:12])
	if valid != nil {
		fmt.Fprintf(stdout, "validation %s split %s: %d examples, sha256 %s\n", valid.Path, *validationSplit, len(valid.Examples), valid.SHA256[:12])
	}
	// The generated file is each version's model.json with the measured
	// figures; it keeps its recorded evaluated_at when the figures are the
	// same, so --write twice changes nothing and --check means "--write
	// would change nothing".
	out := generate.Output{From: "the models and " + ds.Path, Regenerate: "make evaluate"}
	var stale []error
	for _, v := range versions {
		res := evaluate.Run(v.Model, ds)
		evaluate.Report(stdout, v.Meta.Version+" held-out", res)
		for i, miss := range res.Errors {
			if i >= *showErrors {
				break
			}
			fmt.Fprintf(stdout, "    line %d [%s] gold %s, got %s %.2f: %s\n", miss.Line, miss.Category, miss.Label, miss.Predicted.Sentiment, miss.Predicted.Confidence, miss.Text)
		}
		measured := model.Metrics{Scores: res.Scores(ds, "")}
		if valid != nil {
			vres := evaluate.Run(v.Model, valid)
			evaluate.Report(stdout, v.Meta.Version+" validation", vres)
			s := vres.Scores(valid, *validationSplit)
			measured.Validation = &s
		}
		path := filepath.Join(v.Dir, model.MetadataFile)
		err := compareMetrics(path, v.Meta.Metrics, measured)
		if err == nil {
			measured.EvaluatedAt = v.Meta.Metrics.EvaluatedAt
		} else {
			stale = append(stale, err)
			measured.EvaluatedAt = time.Now().UTC().Truncate(time.Second)
		}
		meta := v.Meta
		meta.Metrics = &measured
		data, err := model.EncodeMetadata(meta)
		if err != nil {
			return err
		}
		out.Files = append(out.Files, generate.File{Path: path, Data: data})
	}
	if !*check && !*write {
		return nil
	}
	if err := out.Apply(*check, stdout); err != nil {
		// Why a file is stale (which figures), then what differs in it.
		return errors.Join(append(stale, err)...)
	}
	return nil
}

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
	case !reflect.DeepEqual(recorded.Scores, measured.Scores):
		return fmt.Errorf("%s: metrics are stale: the recorded per-class figures, confusion matrix or macro-recall differ from the measured ones", path)
	case (recorded.Validation == nil) != (measured.Validation == nil):
		return fmt.Errorf("%s: metrics are stale: field \"metrics.validation\" is recorded %t, measured %t", path, recorded.Validation != nil, measured.Validation != nil)
	case measured.Validation != nil && !reflect.DeepEqual(*recorded.Validation, *measured.Validation):
		return fmt.Errorf("%s: metrics are stale: validation (%s %s) recorded macro-recall %.4f f1 %.4f, measured %.4f %.4f",
			path, measured.Validation.Dataset, measured.Validation.Split, recorded.Validation.MacroRecall, recorded.Validation.F1Score, measured.Validation.MacroRecall, measured.Validation.F1Score)
	}
	return nil
}
