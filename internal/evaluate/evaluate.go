// Package evaluate scores model versions on a labelled dataset: accuracy,
// per-label precision/recall/F1, macro-F1, macro-recall and the confusion
// matrix. It loads the project's CSV sets and the SemEval tweets.
package evaluate

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ml-platform/platform/internal/model"
)

// Example is one labelled text.
type Example struct {
	Text     string
	Label    model.Sentiment
	Category string
	Line     int
}

// Dataset is a loaded CSV with its identity.
type Dataset struct {
	Path     string
	SHA256   string
	Examples []Example
}

// LoadCSV reads a dataset with the header text,label[,category]. Errors name
// the file, line and field.
func LoadCSV(path string) (*Dataset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dataset: %w", err)
	}
	sum := sha256.Sum256(data)
	r := csv.NewReader(strings.NewReader(string(data)))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: read header: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	ti, ok1 := col["text"]
	li, ok2 := col["label"]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%s:1: header must have columns \"text\" and \"label\", got %q", path, header)
	}
	ci, hasCat := col["category"]
	ds := &Dataset{Path: path, SHA256: hex.EncodeToString(sum[:])}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(rec) != len(header) {
			return nil, fmt.Errorf("%s:%d: want %d fields, got %d", path, line, len(header), len(rec))
		}
		label := model.Sentiment(strings.TrimSpace(rec[li]))
		if !slices.Contains(model.Labels, label) {
			return nil, fmt.Errorf("%s:%d: field \"label\": %q is not one of positive, negative, neutral", path, line, label)
		}
		if strings.TrimSpace(rec[ti]) == "" {
			return nil, fmt.Errorf("%s:%d: field \"text\" is empty", path, line)
		}
		ex := Example{Text: rec[ti], Label: label, Line: line}
		if hasCat {
			ex.Category = rec[ci]
		}
		ds.Examples = append(ds.Examples, ex)
	}
	if len(ds.Examples) == 0 {
		return nil, fmt.Errorf("%s: no examples", path)
	}
	return ds, nil
}

// ClassScore is precision, recall and F1 for one label.
type ClassScore = model.ClassScore

// Result is a model's score on a dataset.
type Result struct {
	Samples  int
	Accuracy float64
	MacroF1  float64
	// MacroRecall is the mean recall over the labels (SemEval's metric).
	MacroRecall float64
	PerClass    map[model.Sentiment]ClassScore
	// Confusion[gold][predicted] counts examples.
	Confusion map[model.Sentiment]map[model.Sentiment]int
	// Errors are the misclassified examples, in dataset order.
	Errors []Miss
	// ByCategory is the accuracy per category.
	ByCategory map[string]float64
}

// Miss is one misclassified example.
type Miss struct {
	Example
	Predicted model.Prediction
}

// Run scores m on ds.
func Run(m model.Model, ds *Dataset) Result {
	return RunFunc(ds, func(ex Example) model.Prediction { return model.Predict(m, ex.Text) })
}

// RunFunc scores the answers of predict on ds (cross-validation answers each
// example with the model that did not train on it).
func RunFunc(ds *Dataset, predict func(Example) model.Prediction) Result {
	res := Result{
		Samples:    len(ds.Examples),
		PerClass:   map[model.Sentiment]ClassScore{},
		Confusion:  map[model.Sentiment]map[model.Sentiment]int{},
		ByCategory: map[string]float64{},
	}
	for _, l := range model.Labels {
		res.Confusion[l] = map[model.Sentiment]int{}
	}
	catTotal, catRight := map[string]int{}, map[string]int{}
	correct := 0
	for _, ex := range ds.Examples {
		p := predict(ex)
		res.Confusion[ex.Label][p.Sentiment]++
		catTotal[ex.Category]++
		if p.Sentiment == ex.Label {
			correct++
			catRight[ex.Category]++
		} else {
			res.Errors = append(res.Errors, Miss{ex, p})
		}
	}
	res.Accuracy = float64(correct) / float64(len(ds.Examples))
	for _, l := range model.Labels {
		tp := res.Confusion[l][l]
		var predicted, support int
		for _, g := range model.Labels {
			predicted += res.Confusion[g][l]
			support += res.Confusion[l][g]
		}
		cs := ClassScore{Support: support}
		if predicted > 0 {
			cs.Precision = float64(tp) / float64(predicted)
		}
		if support > 0 {
			cs.Recall = float64(tp) / float64(support)
		}
		if cs.Precision+cs.Recall > 0 {
			cs.F1 = 2 * cs.Precision * cs.Recall / (cs.Precision + cs.Recall)
		}
		res.PerClass[l] = cs
		res.MacroF1 += cs.F1 / float64(len(model.Labels))
		res.MacroRecall += cs.Recall / float64(len(model.Labels))
	}
	for c, n := range catTotal {
		res.ByCategory[c] = float64(catRight[c]) / float64(n)
	}
	return res
}

// Report writes a human-readable summary.
func Report(w io.Writer, version string, r Result) {
	fmt.Fprintf(w, "%s: accuracy %.4f  macro-F1 %.4f  macro-recall %.4f  (%d samples)\n", version, r.Accuracy, r.MacroF1, r.MacroRecall, r.Samples)
	for _, l := range model.Labels {
		c := r.PerClass[l]
		fmt.Fprintf(w, "  %-8s precision %.3f recall %.3f f1 %.3f support %d\n", l, c.Precision, c.Recall, c.F1, c.Support)
	}
	fmt.Fprintf(w, "  confusion (rows gold, columns predicted: positive negative neutral)\n")
	for _, g := range model.Labels {
		fmt.Fprintf(w, "  %-8s %5d %5d %5d\n", g, r.Confusion[g][model.Positive], r.Confusion[g][model.Negative], r.Confusion[g][model.Neutral])
	}
	if len(r.ByCategory) <= 1 {
		return
	}
	cats := make([]string, 0, len(r.ByCategory))
	for c := range r.ByCategory {
		cats = append(cats, c)
	}
	slices.Sort(cats)
	fmt.Fprintf(w, "  accuracy by category:")
	for _, c := range cats {
		fmt.Fprintf(w, " %s=%.2f", c, r.ByCategory[c])
	}
	fmt.Fprintln(w)
}

// Scores are the figures of r as metadata records them, rounded to four
// decimals so that a re-measurement compares equal.
func (r Result) Scores(ds *Dataset, split string) model.Scores {
	s := model.Scores{
		Accuracy:      round4(r.Accuracy),
		F1Score:       round4(r.MacroF1),
		MacroRecall:   round4(r.MacroRecall),
		PerClass:      map[model.Sentiment]model.ClassScore{},
		Confusion:     map[model.Sentiment]map[model.Sentiment]int{},
		Dataset:       filepath.ToSlash(ds.Path),
		DatasetSHA256: ds.SHA256,
		Split:         split,
		Samples:       r.Samples,
	}
	for _, l := range model.Labels {
		c := r.PerClass[l]
		s.PerClass[l] = model.ClassScore{Precision: round4(c.Precision), Recall: round4(c.Recall), F1: round4(c.F1), Support: c.Support}
		s.Confusion[l] = maps.Clone(r.Confusion[l])
	}
	return s
}

// Measure scores m on the held-out set and, when validation is not nil, on
// the validation split: the metrics `platformctl model evaluate` records
// (EvaluatedAt is left for the caller to stamp).
func Measure(m model.Model, heldOut, validation *Dataset) model.Metrics {
	metrics := model.Metrics{Scores: Run(m, heldOut).Scores(heldOut, "")}
	if validation != nil {
		s := Run(m, validation).Scores(validation, splitOf(validation))
		metrics.Validation = &s
	}
	return metrics
}

// splitOf names the single category of a SemEval subset ("2016test"), or
// nothing when it mixes several.
func splitOf(ds *Dataset) string {
	split := ""
	for i, ex := range ds.Examples {
		if i > 0 && ex.Category != split {
			return ""
		}
		split = ex.Category
	}
	return split
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
