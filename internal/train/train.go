// Package train fits the v3 sentiment model (artifact kind hashed-logreg):
// multinomial logistic regression on the features of model.Featurizer (the
// same code that serves it, so training and serving cannot drift), minimised
// by gonum's L-BFGS. It assembles the data (SemEval tweets and the project's
// dev sentences, never eval.csv), trains, writes the artifact and measures
// it, and returns a Result that an experiment tracker can log as it is.
package train

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ml-platform/platform/internal/generate"

	"gonum.org/v1/gonum/optimize"

	"github.com/ml-platform/platform/internal/evaluate"
	"github.com/ml-platform/platform/internal/model"
)

// Hyperparameters of the optimisation (the feature side is
// model.FeatureConfig).
type Hyperparameters struct {
	// L2 is the penalty on the squared norm of the weights (not the bias),
	// relative to a loss averaged over the (weighted) examples.
	L2 float64 `json:"l2"`
	// L2Dense is the penalty on the few dense features' weights (v2's
	// analysis): they are well scaled and few, and need not be shrunk as
	// hard as a quarter of a million sparse ones.
	L2Dense float64 `json:"l2_dense"`
	// ClassBalance weights each example of class c by (n / (3 n_c))^ClassBalance
	// (n_c: the class's weighted count): 0 leaves the classes as they come,
	// 1 makes each class weigh as much as the others (a rare class, here
	// negative, counts more), which favours macro-recall; in between softens
	// that.
	ClassBalance float64 `json:"class_balance"`
	// DevWeight is the weight of each dev.csv sentence relative to a tweet.
	DevWeight float64 `json:"dev_weight"`
	// RecentWeight is the weight of each tweet from the validation split's
	// year (2016train, 2016dev, 2016devtest for 2016test) relative to an
	// older one: later data is scored, and topics drift.
	RecentWeight float64 `json:"recent_weight"`
	// MaxIterations bounds L-BFGS's major iterations.
	MaxIterations int `json:"max_iterations"`
}

// Validate checks the hyperparameters; errors name the field.
func (h Hyperparameters) Validate() error {
	switch {
	case !(h.L2 >= 0) || math.IsInf(h.L2, 0):
		return fmt.Errorf("hyperparameter \"l2\": %v must be a finite number >= 0", h.L2)
	case !(h.L2Dense >= 0) || math.IsInf(h.L2Dense, 0):
		return fmt.Errorf("hyperparameter \"l2_dense\": %v must be a finite number >= 0", h.L2Dense)
	case !(h.ClassBalance >= 0 && h.ClassBalance <= 1):
		return fmt.Errorf("hyperparameter \"class_balance\": %v must be in [0, 1]", h.ClassBalance)
	case !(h.DevWeight >= 0) || math.IsInf(h.DevWeight, 0):
		return fmt.Errorf("hyperparameter \"dev_weight\": %v must be a finite number >= 0", h.DevWeight)
	case !(h.RecentWeight >= 0) || math.IsInf(h.RecentWeight, 0):
		return fmt.Errorf("hyperparameter \"recent_weight\": %v must be a finite number >= 0", h.RecentWeight)
	case h.MaxIterations < 1:
		return fmt.Errorf("hyperparameter \"max_iterations\": %d must be >= 1", h.MaxIterations)
	}
	return nil
}

// Config is one training run.
type Config struct {
	// SemEval is the tweets file (data/semeval); every split but Validation
	// trains, Validation selects.
	SemEval    string
	Validation string
	// Dev is the project's development set (data/sentiment/dev.csv).
	Dev string
	// HeldOut is the held-out evaluation set (data/sentiment/eval.csv). It
	// is only measured, after training, and recorded in the metadata.
	HeldOut string
	// Lexicon is the v2 artifact directory whose analysis gives features.
	Lexicon string
	// Out is the artifact directory to write (models/v3).
	Out string
	// Version and Name go into model.json.
	Version, Name string

	Features        model.FeatureConfig // Lexicon is filled in from Lexicon
	Hyperparameters Hyperparameters
	// Workers computes the gradient in parallel; the result does not depend
	// on it.
	Workers int
	// Now stamps the metadata (time.Now when nil).
	Now func() time.Time
}

// DataFile identifies one input file and what it was used for.
type DataFile struct {
	Path     string   `json:"path"`
	SHA256   string   `json:"sha256"`
	Use      string   `json:"use"` // "train", "validation" or "heldout"
	Splits   []string `json:"splits,omitempty"`
	Examples int      `json:"examples"`
}

// Record is what params.training of the artifact holds: enough to retrain
// the same weights.
type Record struct {
	Hyperparameters Hyperparameters `json:"hyperparameters"`
	Data            []DataFile      `json:"data"`
	Optimizer       string          `json:"optimizer"`
	Iterations      int             `json:"iterations"`
	Evaluations     int             `json:"evaluations"`
	Status          string          `json:"status"`
	Objective       float64         `json:"objective"`
}

// Result is everything a run produced. Params and Metrics are flat maps, the
// shape experiment trackers (MLflow's log_params/log_metrics) take.
type Result struct {
	Record        Record
	Features      model.FeatureConfig
	Params        map[string]string
	Metrics       map[string]float64
	Measured      model.Metrics // as recorded in model.json
	ModelJSON     string
	WeightsFile   string
	WeightsSHA256 string
	// VocabularySHA256 is the sha256 of the vocabulary file.
	VocabularySHA256 string
	Duration         time.Duration
}

// WeightsFile is the name of the weights file in the artifact.
const WeightsFile = "weights.bin"

// VocabularyFile is the name of the vocabulary file in the artifact: the
// training words seen at least model.VocabularyMinCount times, whose
// character n-grams the served model sums once, at load.
const VocabularyFile = "vocabulary.txt"

// Train runs cfg: it loads the data, fits the weights, writes the artifact to
// cfg.Out and measures it.
func Train(ctx context.Context, cfg Config) (*Result, error) {
	began := time.Now()
	if err := cfg.Hyperparameters.Validate(); err != nil {
		return nil, err
	}
	lex, lexSHA, err := model.LoadRuleLexicon(cfg.Lexicon)
	if err != nil {
		return nil, fmt.Errorf("lexicon: %w", err)
	}
	// The lexicon travels inside the artifact: a registry hands servers one
	// directory, so the model cannot point at a sibling's.
	if err := model.BundleRuleLexicon(cfg.Lexicon, filepath.Join(cfg.Out, LexiconDir), lexSHA); err != nil {
		return nil, fmt.Errorf("lexicon: %w", err)
	}
	cfg.Features.Lexicon = LexiconDir
	feat, err := model.NewFeaturizer(cfg.Features, lex)
	if err != nil {
		return nil, err
	}

	data, err := loadData(cfg)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w, fitted, err := fit(ctx, feat, data.train, cfg.Hyperparameters, cfg.Workers)
	if err != nil {
		return nil, err
	}
	record := Record{
		Hyperparameters: cfg.Hyperparameters,
		Data:            data.files,
		Optimizer:       fmt.Sprintf("gonum.org/v1/gonum/optimize LBFGS (store %d), from zero", lbfgsStore),
		Iterations:      fitted.MajorIterations,
		Evaluations:     fitted.FuncEvaluations,
		Status:          fitted.Status.String(),
		Objective:       fitted.F,
	}
	vocabulary := feat.Vocabulary(texts(data.train), model.VocabularyMinCount)
	out, err := writeArtifact(cfg, w, vocabulary, lexSHA, record)
	if err != nil {
		return nil, err
	}
	out.Record, out.Features = record, cfg.Features

	// Measure the artifact as the server will load it.
	v, err := model.LoadArtifact(cfg.Out)
	if err != nil {
		return nil, fmt.Errorf("reload the written artifact: %w", err)
	}
	measured := evaluate.Measure(v.Model, data.heldOut, data.validation)
	measured.EvaluatedAt = v.Meta.TrainingDate
	meta := v.Meta
	meta.Metrics = &measured
	if err := model.WriteMetadata(out.ModelJSON, meta); err != nil {
		return nil, err
	}
	out.Measured = measured
	out.Params = flatParams(cfg.Features, cfg.Hyperparameters)
	out.Metrics = flatMetrics(measured, record)
	out.Duration = time.Since(began)
	return out, nil
}

const lbfgsStore = 15

// fit minimises the objective on examples and returns the weights, as
// float32 (what the artifact stores), and the optimiser's result.
func fit(ctx context.Context, feat *model.Featurizer, examples []example, h Hyperparameters, workers int) (model.Weights, *optimize.Result, error) {
	weights := exampleWeights(examples, h)
	x := featurise(feat, texts(examples), labelIndices(examples), weights, feat.Dimensions())
	rows := feat.Dimensions() + 1
	obj := newObjective(x, rows, feat.Config().HashBuckets, h.L2, h.L2Dense, workers)
	problem := optimize.Problem{
		Func: func(w []float64) float64 {
			f, _ := obj.evaluate(w)
			return f
		},
		Grad: func(grad, w []float64) {
			_, g := obj.evaluate(w)
			copy(grad, g)
		},
		Status: func() (optimize.Status, error) {
			if err := ctx.Err(); err != nil {
				return optimize.Failure, err
			}
			return optimize.NotTerminated, nil
		},
	}
	settings := &optimize.Settings{
		MajorIterations: h.MaxIterations,
		// Stop when 20 iterations in a row improve the objective by less than
		// one part in a million: the predictions no longer change.
		Converger: &optimize.FunctionConverge{Relative: 1e-6, Iterations: 20},
	}
	res, err := optimize.Minimize(problem, make([]float64, obj.dim()), settings, &optimize.LBFGS{Store: lbfgsStore})
	if err != nil && !isBenignStop(res) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return model.Weights{}, nil, ctxErr
		}
		return model.Weights{}, nil, fmt.Errorf("optimise: %w", err)
	}
	w := model.Weights{Rows: rows, Classes: len(model.Labels), Values: make([]float32, len(res.X))}
	for i, v := range res.X {
		w.Values[i] = float32(v)
	}
	return w, res, nil
}

// isBenignStop: the run ended by a limit or by convergence, not a failure.
func isBenignStop(res *optimize.Result) bool {
	if res == nil {
		return false
	}
	switch res.Status {
	case optimize.IterationLimit, optimize.FunctionConvergence, optimize.GradientThreshold, optimize.Success:
		return true
	}
	return false
}

// exampleWeights is each example's weight in the loss.
func exampleWeights(exs []example, h Hyperparameters) []float64 {
	var count [3]float64
	for _, ex := range exs {
		count[ex.label] += ex.weight(h)
	}
	total := count[0] + count[1] + count[2]
	out := make([]float64, len(exs))
	for i, ex := range exs {
		out[i] = ex.weight(h)
		if h.ClassBalance > 0 && count[ex.label] > 0 {
			out[i] *= math.Pow(total/(3*count[ex.label]), h.ClassBalance)
		}
	}
	return out
}

func writeArtifact(cfg Config, w model.Weights, vocabulary []string, lexSHA string, record Record) (*Result, error) {
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := model.WriteWeights(&buf, w); err != nil {
		return nil, err
	}
	weightsPath := filepath.Join(cfg.Out, WeightsFile)
	if err := generate.WriteFile(weightsPath, buf.Bytes()); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(buf.Bytes())
	weightsSHA := hex.EncodeToString(sum[:])
	words, err := model.EncodeVocabulary(vocabulary)
	if err != nil {
		return nil, err
	}
	vocabularyPath := filepath.Join(cfg.Out, VocabularyFile)
	if err := generate.WriteFile(vocabularyPath, words); err != nil {
		return nil, err
	}
	sum = sha256.Sum256(words)
	vocabularySHA := hex.EncodeToString(sum[:])
	training, err := json.Marshal(record)
	if err != nil {
		return nil, err
	}
	params, err := json.Marshal(model.HashedLogRegParams{
		Labels:           model.Labels,
		Features:         cfg.Features,
		Weights:          WeightsFile,
		WeightsSHA256:    weightsSHA,
		LexiconSHA256:    lexSHA,
		Vocabulary:       VocabularyFile,
		VocabularySHA256: vocabularySHA,
		Training:         training,
	})
	if err != nil {
		return nil, err
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	stamp := now().UTC().Truncate(time.Second)
	meta := model.Metadata{
		Name:    cfg.Name,
		Version: cfg.Version,
		Kind:    model.KindHashedLogReg,
		Description: fmt.Sprintf("Multinomial logistic regression on hashed word 1-%d-grams and character %d-%d-grams (%d buckets) plus v2's lexicon analysis, trained on %d SemEval 2013-2016 tweets and %d dev sentences (weight %g).",
			cfg.Features.WordNgrams, cfg.Features.CharNgramMin, cfg.Features.CharNgramMax, cfg.Features.HashBuckets,
			record.Data[0].Examples, record.Data[1].Examples, cfg.Hyperparameters.DevWeight),
		Created:      stamp,
		TrainingDate: stamp,
		RunID:        "local-hashed-logreg-" + weightsSHA[:12],
		Params:       params,
	}
	modelJSON := filepath.Join(cfg.Out, model.MetadataFile)
	if err := model.WriteMetadata(modelJSON, meta); err != nil {
		return nil, err
	}
	return &Result{ModelJSON: modelJSON, WeightsFile: weightsPath, WeightsSHA256: weightsSHA, VocabularySHA256: vocabularySHA}, nil
}

// LexiconDir is where an artifact keeps its copy of the rule-lexicon
// artifact whose analysis gives it dense features.
const LexiconDir = "lexicon"

func flatParams(f model.FeatureConfig, h Hyperparameters) map[string]string {
	return map[string]string{
		"hash_buckets":   strconv.Itoa(f.HashBuckets),
		"hash_seed":      strconv.FormatUint(f.HashSeed, 10),
		"word_ngrams":    strconv.Itoa(f.WordNgrams),
		"char_ngram_min": strconv.Itoa(f.CharNgramMin),
		"char_ngram_max": strconv.Itoa(f.CharNgramMax),
		"negation_marks": strconv.FormatBool(f.NegationMarks),
		"l2":             strconv.FormatFloat(h.L2, 'g', -1, 64),
		"l2_dense":       strconv.FormatFloat(h.L2Dense, 'g', -1, 64),
		"class_balance":  strconv.FormatFloat(h.ClassBalance, 'g', -1, 64),
		"dev_weight":     strconv.FormatFloat(h.DevWeight, 'g', -1, 64),
		"recent_weight":  strconv.FormatFloat(h.RecentWeight, 'g', -1, 64),
		"max_iterations": strconv.Itoa(h.MaxIterations),
	}
}

func flatMetrics(m model.Metrics, r Record) map[string]float64 {
	out := map[string]float64{"iterations": float64(r.Iterations), "objective": r.Objective}
	add := func(prefix string, s model.Scores) {
		out[prefix+"_accuracy"] = s.Accuracy
		out[prefix+"_macro_f1"] = s.F1Score
		out[prefix+"_macro_recall"] = s.MacroRecall
		for _, l := range model.Labels {
			c := s.PerClass[l]
			out[prefix+"_"+string(l)+"_precision"] = c.Precision
			out[prefix+"_"+string(l)+"_recall"] = c.Recall
		}
	}
	add("heldout", m.Scores)
	if m.Validation != nil {
		add("validation", *m.Validation)
	}
	return out
}

// ReadRecord decodes params.training of a hashed-logreg artifact strictly.
func ReadRecord(meta model.Metadata) (model.HashedLogRegParams, Record, error) {
	var p model.HashedLogRegParams
	var r Record
	if meta.Kind != model.KindHashedLogReg {
		return p, r, fmt.Errorf("kind %q is not %q", meta.Kind, model.KindHashedLogReg)
	}
	if err := json.Unmarshal(meta.Params, &p); err != nil {
		return p, r, fmt.Errorf("field \"params\": %w", err)
	}
	if len(p.Training) == 0 {
		return p, r, errors.New("field \"params.training\" is missing: the artifact was not made by platformctl model train")
	}
	dec := json.NewDecoder(bytes.NewReader(p.Training))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return p, r, fmt.Errorf("field \"params.training\": %w", err)
	}
	return p, r, nil
}

// ConfigFromRecord rebuilds the configuration that made an artifact, reading
// the data from the paths it recorded (relative to the working directory).
func ConfigFromRecord(p model.HashedLogRegParams, r Record, lexicon, out string) (Config, error) {
	cfg := Config{Lexicon: lexicon, Out: out, Features: p.Features, Hyperparameters: r.Hyperparameters}
	for _, d := range r.Data {
		switch d.Use {
		case useTrain:
			if len(d.Splits) > 0 {
				cfg.SemEval = d.Path
			} else {
				cfg.Dev = d.Path
			}
		case useValidation:
			cfg.SemEval = d.Path
			if len(d.Splits) != 1 {
				return cfg, fmt.Errorf("validation data %s: want one split, got %q", d.Path, d.Splits)
			}
			cfg.Validation = d.Splits[0]
		case useHeldOut:
			cfg.HeldOut = d.Path
		}
	}
	if cfg.SemEval == "" || cfg.Dev == "" || cfg.HeldOut == "" || cfg.Validation == "" {
		return cfg, errors.New("field \"params.training.data\" does not name the tweets, the validation split, the dev set and the held-out set")
	}
	return cfg, nil
}
