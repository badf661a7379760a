package evaluate

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/model"
)

// constant always answers one label; it makes the expected figures easy to
// compute by hand.
type constant model.Sentiment

func (c constant) Tokenize(string) []string { return nil }
func (c constant) Score([]string) model.Prediction {
	return model.Prediction{Sentiment: model.Sentiment(c), Confidence: 0.5}
}

func TestRunComputesMacroF1(t *testing.T) {
	ds := &Dataset{Examples: []Example{
		{Text: "a", Label: model.Positive}, {Text: "b", Label: model.Positive},
		{Text: "c", Label: model.Negative}, {Text: "d", Label: model.Neutral},
	}}
	r := Run(constant(model.Positive), ds)
	// positive: precision 2/4, recall 1, F1 2/3; the others 0. Macro = 2/9.
	if r.Accuracy != 0.5 || math.Abs(r.MacroF1-2.0/9) > 1e-12 {
		t.Errorf("accuracy %v macro-F1 %v, want 0.5 and 2/9", r.Accuracy, r.MacroF1)
	}
	if r.Confusion[model.Negative][model.Positive] != 1 || len(r.Errors) != 2 {
		t.Errorf("confusion %v errors %d", r.Confusion, len(r.Errors))
	}
}

func TestLoadCSVErrorsNameLineAndField(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"text,label\nfine,happy\n":    `:2: field "label"`,
		"words,label\nfine,positive":  `:1: header`,
		"text,label\n\"\",positive\n": `:2: field "text"`,
	}
	for content, want := range cases {
		p := filepath.Join(dir, "d.csv")
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := LoadCSV(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", content, err, want)
		}
	}
}
