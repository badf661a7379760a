package train

import (
	"bufio"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/evaluate"
	"github.com/ml-platform/platform/internal/model"
)

var (
	repoRoot   = filepath.Join("..", "..")
	semevalTSV = filepath.Join(repoRoot, "data", "semeval", "semeval-2013-2016-subtask-a.tsv")
	devCSV     = filepath.Join(repoRoot, "data", "sentiment", "dev.csv")
	evalCSV    = filepath.Join(repoRoot, "data", "sentiment", "eval.csv")
	v2Dir      = filepath.Join(repoRoot, "models", "v2")
)

func fullConfig(out string) Config {
	return Config{
		SemEval: semevalTSV, Validation: "2016test", Dev: devCSV, HeldOut: evalCSV, Lexicon: v2Dir,
		Out: out, Version: "v3", Name: "sentiment-analyzer", Workers: 2,
		Features:        model.FeatureConfig{HashBuckets: 1 << 12, HashSeed: 1, WordNgrams: 2, CharNgramMin: 2, CharNgramMax: 4, NegationMarks: true},
		Hyperparameters: Hyperparameters{L2: 1e-4, ClassBalance: 1, DevWeight: 1, RecentWeight: 1, MaxIterations: 25},
		Now:             func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) },
	}
}

// leaked returns the held-out texts that occur in train.
func leaked(train, heldOut []string) []string {
	in := map[string]bool{}
	for _, t := range train {
		in[SameText(t)] = true
	}
	var out []string
	for _, t := range heldOut {
		if in[SameText(t)] {
			out = append(out, t)
		}
	}
	return out
}

// TestTrainingSetExcludesHeldOut: no eval.csv sentence is trained on, and
// neither is any tweet of the validation split.
func TestTrainingSetExcludesHeldOut(t *testing.T) {
	cfg := fullConfig(t.TempDir())
	texts, err := TrainingTexts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	heldOut, err := evaluate.LoadCSV(evalCSV)
	if err != nil {
		t.Fatal(err)
	}
	tweets, err := evaluate.LoadSemEval(semevalTSV)
	if err != nil {
		t.Fatal(err)
	}
	var heldOutTexts, validation []string
	for _, ex := range heldOut.Examples {
		heldOutTexts = append(heldOutTexts, ex.Text)
	}
	for _, ex := range tweets.Subset(func(s string) bool { return s == "2016test" }).Examples {
		validation = append(validation, ex.Text)
	}
	// 29,090 tweets are outside 2016test; a few of them are the same text as
	// a 2016test tweet but for case or spacing, and are left out.
	if len(texts) < 29000+209 || len(texts) > 29090+209 {
		t.Errorf("%d training texts, want about 29,090 tweets and the 209 dev sentences", len(texts))
	}
	t.Logf("%d training texts", len(texts))
	if l := leaked(texts, heldOutTexts); len(l) > 0 {
		t.Errorf("%d eval.csv texts are in the training set, e.g. %q", len(l), l[0])
	}
	if l := leaked(texts, validation); len(l) > 0 {
		t.Errorf("%d 2016test tweets are in the training set, e.g. %q", len(l), l[0])
	}
	// The check catches a planted leak (with its case changed).
	planted := append(texts[:len(texts):len(texts)], strings.ToUpper(heldOutTexts[42]))
	if l := leaked(planted, heldOutTexts); len(l) != 1 || l[0] != heldOutTexts[42] {
		t.Errorf("planted leak not found: %q", l)
	}
	// Pointing the dev set at the held-out file is refused.
	cfg.Dev = evalCSV
	if _, err := TrainingTexts(cfg); err == nil || !strings.Contains(err.Error(), "is the held-out set") {
		t.Errorf("dev = eval.csv: err %v", err)
	}
}

// smallSemEval writes the header and every step-th tweet of the real file.
func smallSemEval(t *testing.T, step int) string {
	t.Helper()
	in, err := os.Open(semevalTSV)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), "small.tsv")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(in)
	for i := 0; sc.Scan(); i++ {
		if i == 0 || i%step == 0 {
			out.WriteString(sc.Text() + "\n")
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTrainingIsDeterministic trains twice on a sample, with one and with
// two workers: the weights must be byte-identical. A different hash seed
// must change them (the comparison can fail).
func TestTrainingIsDeterministic(t *testing.T) {
	small := smallSemEval(t, 25)
	root := t.TempDir()
	var sums, vocabularies []string
	for i, workers := range []int{1, 2, 2} {
		cfg := fullConfig(filepath.Join(root, string(rune('a'+i)), "v3"))
		cfg.SemEval, cfg.Workers = small, workers
		if i == 2 {
			cfg.Features.HashSeed++
		}
		res, err := Train(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, res.WeightsSHA256)
		vocabularies = append(vocabularies, res.VocabularySHA256)
		if i == 0 {
			checkResult(t, res)
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("weights differ between runs with 1 and 2 workers: %s, %s", sums[0], sums[1])
	}
	if vocabularies[0] != vocabularies[1] || vocabularies[0] != vocabularies[2] {
		t.Errorf("the vocabulary, which depends on the data alone, differs between runs: %q", vocabularies)
	}
	if sums[2] == sums[0] {
		t.Errorf("another hash seed gave the same weights")
	}
}

// checkResult: the result carries what a tracker logs, and the artifact it
// names loads and is measured as model evaluate would record it.
func checkResult(t *testing.T, res *Result) {
	t.Helper()
	for _, k := range []string{"l2", "class_balance", "hash_buckets", "hash_seed", "dev_weight"} {
		if res.Params[k] == "" {
			t.Errorf("params lack %s: %v", k, res.Params)
		}
	}
	for _, k := range []string{"validation_macro_recall", "heldout_macro_f1", "validation_negative_recall"} {
		if _, ok := res.Metrics[k]; !ok {
			t.Errorf("metrics lack %s: %v", k, res.Metrics)
		}
	}
	if len(res.Record.Data) != 4 || res.Record.Data[0].SHA256 == "" {
		t.Errorf("data %+v", res.Record.Data)
	}
	v, err := model.LoadArtifact(filepath.Dir(res.ModelJSON))
	if err != nil {
		t.Fatal(err)
	}
	heldOut, err := evaluate.LoadCSV(evalCSV)
	if err != nil {
		t.Fatal(err)
	}
	got := evaluate.Run(v.Model, heldOut).Scores(heldOut, "")
	if v.Meta.Metrics == nil || v.Meta.Metrics.F1Score != got.F1Score || v.Meta.Metrics.Validation == nil {
		t.Errorf("recorded metrics %+v, measured f1 %v", v.Meta.Metrics, got.F1Score)
	}
	p, r, err := ReadRecord(v.Meta)
	if err != nil {
		t.Fatal(err)
	}
	if p.WeightsSHA256 != res.WeightsSHA256 || r.Hyperparameters != res.Record.Hyperparameters {
		t.Errorf("record %+v does not match the result", r)
	}
	// The vocabulary: the training words seen at least twice, in byte order.
	if p.Vocabulary != VocabularyFile || p.VocabularySHA256 != res.VocabularySHA256 {
		t.Errorf("params.vocabulary %q (sha256 %s), the result's sha256 %s", p.Vocabulary, p.VocabularySHA256, res.VocabularySHA256)
	}
	words, err := model.ReadVocabulary(filepath.Join(filepath.Dir(res.ModelJSON), p.Vocabulary), p.VocabularySHA256)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"the", "good"} {
		if !slices.Contains(words, w) {
			t.Errorf("the vocabulary of %d words lacks %q", len(words), w)
		}
	}
}

func TestHyperparametersValidate(t *testing.T) {
	good := fullConfig("").Hyperparameters
	for _, c := range []struct {
		edit func(*Hyperparameters)
		want string
	}{
		{func(h *Hyperparameters) { h.L2 = -1 }, `"l2"`},
		{func(h *Hyperparameters) { h.ClassBalance = 2 }, `"class_balance"`},
		{func(h *Hyperparameters) { h.DevWeight = -1 }, `"dev_weight"`},
		{func(h *Hyperparameters) { h.RecentWeight = math.NaN() }, `"recent_weight"`},
		{func(h *Hyperparameters) { h.MaxIterations = 0 }, `"max_iterations"`},
	} {
		h := good
		c.edit(&h)
		if err := h.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %s", h, err, c.want)
		}
	}
}

func TestTrainStopsWhenCancelled(t *testing.T) {
	cfg := fullConfig(filepath.Join(t.TempDir(), "v3"))
	cfg.SemEval = smallSemEval(t, 20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, cfg); err == nil {
		t.Error("a cancelled context trained anyway")
	}
}

func TestCrossValidateDev(t *testing.T) {
	cfg := fullConfig(filepath.Join(t.TempDir(), "v3"))
	cfg.SemEval = smallSemEval(t, 20)
	cfg.Hyperparameters.MaxIterations = 10
	res, err := CrossValidateDev(context.Background(), cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples != 209 || res.MacroF1 <= 0 || res.MacroF1 > 1 {
		t.Errorf("cross-validation answered %d dev sentences, macro-F1 %v", res.Samples, res.MacroF1)
	}
	if _, err := CrossValidateDev(context.Background(), cfg, 1); err == nil {
		t.Error("one fold accepted")
	}
}
