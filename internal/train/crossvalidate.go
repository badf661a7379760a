package train

import (
	"context"
	"fmt"

	"github.com/ml-platform/platform/internal/evaluate"
	"github.com/ml-platform/platform/internal/model"
)

// CrossValidateDev estimates how cfg does on everyday sentences without
// touching the held-out set: dev.csv is cut into folds (sentence i in fold
// i mod folds, so each fold has every category), and each fold is answered
// by a model trained on the tweets and the other folds. 2016test measures
// only tweets; this measures the other half of what the model serves.
func CrossValidateDev(ctx context.Context, cfg Config, folds int) (evaluate.Result, error) {
	if folds < 2 {
		return evaluate.Result{}, fmt.Errorf("cross-validation needs at least 2 folds, got %d", folds)
	}
	if err := cfg.Hyperparameters.Validate(); err != nil {
		return evaluate.Result{}, err
	}
	lex, _, err := model.LoadRuleLexicon(cfg.Lexicon)
	if err != nil {
		return evaluate.Result{}, fmt.Errorf("lexicon: %w", err)
	}
	cfg.Features.Lexicon = cfg.Lexicon
	feat, err := model.NewFeaturizer(cfg.Features, lex)
	if err != nil {
		return evaluate.Result{}, err
	}
	data, err := loadData(cfg)
	if err != nil {
		return evaluate.Result{}, err
	}
	dev := &evaluate.Dataset{Path: cfg.Dev}
	var tweets []example
	for _, ex := range data.train {
		if ex.dev {
			dev.Examples = append(dev.Examples, evaluate.Example{Text: ex.text, Label: model.Labels[ex.label], Line: len(dev.Examples)})
		} else {
			tweets = append(tweets, ex)
		}
	}
	devExamples := data.train[len(tweets):]
	byFold := make([]*model.HashedLogReg, folds)
	for k := range folds {
		train := append([]example(nil), tweets...)
		for i, ex := range devExamples {
			if i%folds != k {
				train = append(train, ex)
			}
		}
		w, _, err := fit(ctx, feat, train, cfg.Hyperparameters, cfg.Workers)
		if err != nil {
			return evaluate.Result{}, fmt.Errorf("fold %d: %w", k, err)
		}
		if byFold[k], err = model.NewHashedLogReg(feat, w, nil); err != nil {
			return evaluate.Result{}, err
		}
	}
	return evaluate.RunFunc(dev, func(ex evaluate.Example) model.Prediction {
		return model.Predict(byFold[ex.Line%folds], ex.Text)
	}), nil
}
