package train

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ml-platform/platform/internal/evaluate"
	"github.com/ml-platform/platform/internal/model"
)

// What a data file is used for (DataFile.Use).
const (
	useTrain      = "train"
	useValidation = "validation"
	useHeldOut    = "heldout"
)

type example struct {
	text   string
	label  int
	dev    bool // from dev.csv, weighted by Hyperparameters.DevWeight
	recent bool // a tweet of the validation split's year, weighted by RecentWeight
}

func (e example) weight(h Hyperparameters) float64 {
	switch {
	case e.dev:
		return h.DevWeight
	case e.recent:
		return h.RecentWeight
	}
	return 1
}

type dataSet struct {
	train      []example
	validation *evaluate.Dataset
	heldOut    *evaluate.Dataset
	files      []DataFile
}

// loadData assembles the training set (every SemEval split but the
// validation one, plus dev.csv), the validation split and the held-out set.
// The held-out set is loaded to be measured, never to be trained on.
func loadData(cfg Config) (*dataSet, error) {
	tweets, err := evaluate.LoadSemEval(cfg.SemEval)
	if err != nil {
		return nil, err
	}
	dev, err := evaluate.LoadCSV(cfg.Dev)
	if err != nil {
		return nil, err
	}
	heldOut, err := evaluate.LoadCSV(cfg.HeldOut)
	if err != nil {
		return nil, err
	}
	if dev.SHA256 == heldOut.SHA256 {
		return nil, fmt.Errorf("the dev set %s is the held-out set %s", cfg.Dev, cfg.HeldOut)
	}
	splits := map[string]bool{}
	for _, ex := range tweets.Examples {
		splits[ex.Category] = true
	}
	if !splits[cfg.Validation] {
		return nil, fmt.Errorf("%s has no split %q (splits: %q)", cfg.SemEval, cfg.Validation, sortedKeys(splits))
	}
	validation := tweets.Subset(func(split string) bool { return split == cfg.Validation })
	trainTweets := tweets.Subset(func(split string) bool { return split != cfg.Validation })
	// The file has no duplicate texts, but a few differ only in case or
	// spacing (or in escapes, once decoded): a training text that matches a
	// validation or held-out one is left out, so neither set is trained on.
	excluded := map[string]bool{}
	for _, ds := range []*evaluate.Dataset{validation, heldOut} {
		for _, ex := range ds.Examples {
			excluded[SameText(ex.Text)] = true
		}
	}
	d := &dataSet{validation: validation, heldOut: heldOut}
	kept := 0
	for _, ex := range trainTweets.Examples {
		if !excluded[SameText(ex.Text)] {
			recent := len(ex.Category) >= 4 && ex.Category[:4] == cfg.Validation[:min(4, len(cfg.Validation))]
			d.train = append(d.train, example{text: ex.Text, label: labelIndex(ex.Label), recent: recent})
			kept++
		}
	}
	for _, ex := range dev.Examples {
		if excluded[SameText(ex.Text)] {
			return nil, fmt.Errorf("%s:%d: this dev sentence is also in the held-out set %s", cfg.Dev, ex.Line, cfg.HeldOut)
		}
		d.train = append(d.train, example{text: ex.Text, label: labelIndex(ex.Label), dev: true})
	}
	delete(splits, cfg.Validation)
	d.files = []DataFile{
		{Path: slash(cfg.SemEval), SHA256: tweets.SHA256, Use: useTrain, Splits: sortedKeys(splits), Examples: kept},
		{Path: slash(cfg.Dev), SHA256: dev.SHA256, Use: useTrain, Examples: len(dev.Examples)},
		{Path: slash(cfg.SemEval), SHA256: tweets.SHA256, Use: useValidation, Splits: []string{cfg.Validation}, Examples: len(validation.Examples)},
		{Path: slash(cfg.HeldOut), SHA256: heldOut.SHA256, Use: useHeldOut, Examples: len(heldOut.Examples)},
	}
	return d, nil
}

// SameText is the form in which texts are compared to keep the evaluation
// sets out of training: case and spacing do not make a text new.
func SameText(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }

// TrainingTexts returns the texts cfg would train on, for tests that check
// what is (and is not) in the training set.
func TrainingTexts(cfg Config) ([]string, error) {
	d, err := loadData(cfg)
	if err != nil {
		return nil, err
	}
	return texts(d.train), nil
}

func labelIndex(l model.Sentiment) int { return slices.Index(model.Labels, l) }

func texts(exs []example) []string {
	out := make([]string, len(exs))
	for i, ex := range exs {
		out[i] = ex.text
	}
	return out
}

func labelIndices(exs []example) []int {
	out := make([]int, len(exs))
	for i, ex := range exs {
		out[i] = ex.label
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func slash(path string) string { return filepath.ToSlash(path) }
