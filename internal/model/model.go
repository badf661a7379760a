// Package model defines what a sentiment model is to the server: a two-stage
// pipeline (tokenize, then score) plus the metadata stored beside its artifact.
//
// Models are loaded from an artifact directory (see artifact.go). Each kind of
// model (the seed lexicon, the rule-based v2) registers a constructor for its
// artifact "kind", so adding a model family never touches the server.
package model

import (
	"encoding/json"
	"math"
	"time"
)

// Sentiment is the label a model assigns to a text.
type Sentiment string

// The three labels every model produces.
const (
	Positive Sentiment = "positive"
	Negative Sentiment = "negative"
	Neutral  Sentiment = "neutral"
)

// Labels lists the labels in a stable order (used by evaluation and metrics).
var Labels = []Sentiment{Positive, Negative, Neutral}

// Prediction is a model's answer for one text.
type Prediction struct {
	Sentiment  Sentiment
	Confidence float64
}

// Model is a loaded sentiment model. Implementations must be safe for
// concurrent use and must not retain the slices they are given.
//
// The split into Tokenize and Score mirrors the stages the server traces
// (preprocess, inference); Postprocess is shared by all models.
type Model interface {
	// Tokenize turns raw text into the tokens the model scores.
	Tokenize(text string) []string
	// Score classifies tokens. The confidence is not yet rounded.
	Score(tokens []string) Prediction
}

// Postprocess rounds the confidence to two decimals, the precision the API has
// always returned, so that every model's answer has the same shape.
func Postprocess(p Prediction) Prediction {
	p.Confidence = Round2(p.Confidence)
	return p
}

// Round2 rounds to two decimals, half away from zero.
func Round2(x float64) float64 {
	return math.Round(x*100) / 100
}

// Predict runs the whole pipeline. The server calls the stages one by one to
// trace them; everything else (evaluation, benchmarks) uses this.
func Predict(m Model, text string) Prediction {
	return Postprocess(m.Score(m.Tokenize(text)))
}

// Metrics are the evaluation figures recorded in an artifact's metadata. They
// are written by `platformctl model evaluate`, never by hand. The embedded
// Scores are on the held-out set (data/sentiment/eval.csv); accuracy and
// f1_score are part of the /model/info contract.
type Metrics struct {
	Scores
	EvaluatedAt time.Time `json:"evaluated_at"`
	// Validation holds the same figures on the SemEval 2016test tweets, the
	// split that selects v3's hyperparameters and the stand-in for later
	// Twitter data.
	Validation *Scores `json:"validation,omitempty"`
}

// Scores are one model's figures on one labelled dataset.
type Scores struct {
	Accuracy float64 `json:"accuracy"`
	F1Score  float64 `json:"f1_score"` // macro-averaged F1 over the three labels
	// MacroRecall is the mean of the per-label recalls, the SemEval Twitter
	// benchmark's official metric (robust to the rarity of negatives).
	MacroRecall float64                  `json:"macro_recall,omitempty"`
	PerClass    map[Sentiment]ClassScore `json:"per_class,omitempty"`
	// Confusion[gold][predicted] counts examples.
	Confusion map[Sentiment]map[Sentiment]int `json:"confusion,omitempty"`
	// Dataset identifies what the figures were measured on.
	Dataset       string `json:"dataset"`
	DatasetSHA256 string `json:"dataset_sha256"`
	// Split is the part of the dataset used, when it has several.
	Split   string `json:"split,omitempty"`
	Samples int    `json:"samples"`
}

// ClassScore is precision, recall and F1 for one label.
type ClassScore struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// Metadata describes a model version. It is stored as model.json in the
// artifact directory.
type Metadata struct {
	Name         string    `json:"name"`
	Version      string    `json:"version"`
	Kind         string    `json:"kind"`
	Description  string    `json:"description,omitempty"`
	Created      time.Time `json:"created"`
	TrainingDate time.Time `json:"training_date"`
	RunID        string    `json:"run_id"`
	Metrics      *Metrics  `json:"metrics,omitempty"`
	// Params holds the kind-specific configuration of the model.
	Params json.RawMessage `json:"params,omitempty"`
}
