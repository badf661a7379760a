package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/model"
	"github.com/ml-platform/platform/internal/train"
)

// The data every model is measured on, and v3 trained from.
var (
	defaultSemEval         = filepath.Join("data", "semeval", "semeval-2013-2016-subtask-a.tsv")
	defaultValidationSplit = "2016test"
)

// The configuration of the committed models/v3: the best 2016test
// macro-recall among the runs whose dev.csv cross-validated macro-F1 is at
// least 0.85 (models/v3/TRAINING.md has every run).
var (
	defaultFeatures = model.FeatureConfig{
		HashBuckets:   1 << 18,
		HashSeed:      1,
		WordNgrams:    2,
		CharNgramMin:  2,
		CharNgramMax:  5,
		NegationMarks: true,
	}
	defaultHyperparameters = train.Hyperparameters{
		L2:            1e-4,
		L2Dense:       1e-4,
		ClassBalance:  1,
		DevWeight:     50,
		RecentWeight:  1,
		MaxIterations: 300,
	}
)

func modelTrain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, opts, err := parseTrainFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if opts.check {
		return checkTrained(ctx, cfg, stdout)
	}
	res, err := train.Train(ctx, cfg)
	if err != nil {
		return err
	}
	printTrainResult(stdout, res)
	if opts.devFolds > 0 {
		cv, err := train.CrossValidateDev(ctx, cfg, opts.devFolds)
		if err != nil {
			return err
		}
		res.Metrics["dev_cv_macro_f1"], res.Metrics["dev_cv_accuracy"] = cv.MacroF1, cv.Accuracy
		fmt.Fprintf(stdout, "%s %d-fold cross-validation: macro-F1 %.4f  accuracy %.4f  (%d samples)\n", cfg.Dev, opts.devFolds, cv.MacroF1, cv.Accuracy, cv.Samples)
	}
	return nil
}

// checkTrained retrains the artifact in cfg.Out from the configuration and
// data it records, in a temporary directory, and fails unless the weights
// come out byte for byte the same: training is deterministic and the
// committed weights are what the committed code and data make.
func checkTrained(ctx context.Context, cfg train.Config, stdout io.Writer) error {
	path := filepath.Join(cfg.Out, model.MetadataFile)
	meta, err := model.ReadMetadata(path)
	if err != nil {
		return err
	}
	p, record, err := train.ReadRecord(meta)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tmp, err := os.MkdirTemp("", "platformctl-train-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	again, err := train.ConfigFromRecord(p, record, cfg.Lexicon, filepath.Join(tmp, meta.Version))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	again.Name, again.Version, again.Workers = meta.Name, meta.Version, cfg.Workers
	res, err := train.Train(ctx, again)
	if err != nil {
		return err
	}
	if res.WeightsSHA256 != p.WeightsSHA256 {
		for i, d := range res.Record.Data {
			if i < len(record.Data) && d.SHA256 != record.Data[i].SHA256 {
				fmt.Fprintf(stdout, "%s changed since training: sha256 %.12s, recorded %.12s\n", d.Path, d.SHA256, record.Data[i].SHA256)
			}
		}
		return fmt.Errorf("%s: the weights are stale: retraining from its params.training gives sha256 %s, the committed %s is %s\nrun `platformctl model train` with the recorded flags and commit %s",
			path, res.WeightsSHA256, p.Weights, p.WeightsSHA256, cfg.Out)
	}
	if res.VocabularySHA256 != p.VocabularySHA256 {
		return fmt.Errorf("%s: the vocabulary is stale: retraining from its params.training gives sha256 %s, the committed %q is %q\nrun `platformctl model train` with the recorded flags and commit %s",
			path, res.VocabularySHA256, p.Vocabulary, p.VocabularySHA256, cfg.Out)
	}
	fmt.Fprintf(stdout, "%s: retrained in %s, weights sha256 %s and vocabulary sha256 %s as committed\n", path, res.Duration.Round(1e7), res.WeightsSHA256, res.VocabularySHA256)
	return nil
}

type trainOptions struct {
	check    bool
	devFolds int
}

func parseTrainFlags(args []string, getenv func(string) string, stderr io.Writer) (train.Config, trainOptions, error) {
	fs := config.NewFlagSet("platformctl model train", stderr)
	f, h := defaultFeatures, defaultHyperparameters
	cfg := train.Config{Name: "sentiment-analyzer", Workers: runtime.GOMAXPROCS(0)}
	fs.StringVar(&cfg.SemEval, "semeval", defaultSemEval, "SemEval tweets (TSV): every split but --validation-split trains")
	fs.StringVar(&cfg.Validation, "validation-split", defaultValidationSplit, "the SemEval split that selects hyperparameters (never trained on)")
	fs.StringVar(&cfg.Dev, "dev", filepath.Join("data", "sentiment", "dev.csv"), "the project's labelled dev sentences (CSV), trained on")
	fs.StringVar(&cfg.HeldOut, "heldout", filepath.Join("data", "sentiment", "eval.csv"), "the held-out set (CSV): measured after training, never trained on")
	fs.StringVar(&cfg.Lexicon, "lexicon", filepath.Join("models", "v2"), "the rule-lexicon artifact whose analysis gives dense features")
	fs.StringVar(&cfg.Out, "out", filepath.Join("models", "v3"), "the artifact directory to write")
	fs.StringVar(&cfg.Version, "version", "v3", "the version recorded in model.json")
	fs.Uint64Var(&f.HashSeed, "seed", f.HashSeed, "seed of the feature hash (training itself has no randomness)")
	fs.IntVar(&f.HashBuckets, "hash-buckets", f.HashBuckets, "hashed feature slots (a power of two)")
	fs.IntVar(&f.WordNgrams, "word-ngrams", f.WordNgrams, "1: words; 2: words and adjacent pairs")
	fs.IntVar(&f.CharNgramMin, "char-ngram-min", f.CharNgramMin, "shortest character n-gram (0 with -char-ngram-max 0: none)")
	fs.IntVar(&f.CharNgramMax, "char-ngram-max", f.CharNgramMax, "longest character n-gram")
	fs.BoolVar(&f.NegationMarks, "negation-marks", f.NegationMarks, "add a NOT_word feature for words in a negation's scope")
	fs.Float64Var(&h.L2, "l2", h.L2, "L2 penalty on the hashed features' weights")
	fs.Float64Var(&h.L2Dense, "l2-dense", h.L2Dense, "L2 penalty on the dense (v2 lexicon) features' weights")
	fs.Float64Var(&h.ClassBalance, "class-balance", h.ClassBalance, "0: classes weigh as they come; 1: each class weighs the same in the loss")
	fs.Float64Var(&h.DevWeight, "dev-weight", h.DevWeight, "weight of a dev sentence relative to a tweet")
	fs.Float64Var(&h.RecentWeight, "recent-weight", h.RecentWeight, "weight of a tweet from the validation split's year relative to an older one")
	fs.IntVar(&h.MaxIterations, "max-iterations", h.MaxIterations, "L-BFGS iteration limit")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "goroutines computing the gradient (the result does not depend on it)")
	var opts trainOptions
	fs.BoolVar(&opts.check, "check", false, "retrain the artifact in --out from the configuration it records and fail unless the weights and the vocabulary are byte-identical")
	fs.IntVar(&opts.devFolds, "dev-folds", 0, "after training, estimate the macro-F1 on everyday sentences by this many folds of cross-validation on --dev (0: skip)")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return cfg, opts, err
	}
	cfg.Features, cfg.Hyperparameters = f, h
	return cfg, opts, nil
}

func printTrainResult(w io.Writer, res *train.Result) {
	r := res.Record
	fmt.Fprintf(w, "trained %s in %s: %s after %d iterations (%d evaluations), objective %.6f\n",
		res.ModelJSON, res.Duration.Round(1e7), r.Status, r.Iterations, r.Evaluations, r.Objective)
	fmt.Fprintf(w, "weights %s sha256 %s, vocabulary sha256 %s\n", res.WeightsFile, res.WeightsSHA256, res.VocabularySHA256)
	for _, d := range r.Data {
		fmt.Fprintf(w, "data %-10s %s %v: %d examples, sha256 %.12s\n", d.Use, d.Path, d.Splits, d.Examples, d.SHA256)
	}
	keys := make([]string, 0, len(res.Params))
	for k := range res.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprint(w, "params")
	for _, k := range keys {
		fmt.Fprintf(w, " %s=%s", k, res.Params[k])
	}
	fmt.Fprintln(w)
	for _, s := range []*model.Scores{res.Measured.Validation, &res.Measured.Scores} {
		if s == nil {
			continue
		}
		name := s.Dataset
		if s.Split != "" {
			name += " " + s.Split
		}
		fmt.Fprintf(w, "%s: macro-recall %.4f  macro-F1 %.4f  accuracy %.4f  (%d samples)\n", name, s.MacroRecall, s.F1Score, s.Accuracy, s.Samples)
		for _, l := range model.Labels {
			c := s.PerClass[l]
			fmt.Fprintf(w, "  %-8s precision %.3f recall %.3f f1 %.3f support %d\n", l, c.Precision, c.Recall, c.F1, c.Support)
		}
	}
}
