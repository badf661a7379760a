package model

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func loadRepoModel(t testing.TB, version string) *Version {
	t.Helper()
	v, err := LoadArtifact(filepath.Join("..", "..", "models", version))
	if err != nil {
		t.Fatalf("load %s: %v", version, err)
	}
	return v
}

// The expected answers were produced by the original Python expression
// (re.findall(r'\b[a-z]+\b', text.lower()) with the seed's word sets) run
// under CPython 3.11.
func TestSeedLexiconMatchesPython(t *testing.T) {
	m := loadRepoModel(t, "v1").Model
	cases := []struct {
		text string
		want Sentiment
		conf float64
	}{
		{"This product is great!", Positive, 0.7},
		{"great great great", Positive, 0.7},                        // distinct words only
		{"Great, excellent, amazing and wonderful", Positive, 0.95}, // 0.6+0.4 capped
		{"good bad", Neutral, 0.52},                                 // tie: 0.5 + 0.01*2
		{"The service was terrible and the food was awful", Negative, 0.8},
		{"I LOVE it", Positive, 0.7},
		{"", Neutral, 0.5},
		{"café good", Positive, 0.7}, // "café" is not a match (Unicode \b)
		{"good1 good_ bad", Negative, 0.7},
		{"good_bad great", Positive, 0.7},
		{"İgood", Positive, 0.7}, // İ lowers to i + U+0307: "i" and "good"
		{"x²good", Neutral, 0.5}, // ² is \w in Python: no word boundary
		{"not good", Positive, 0.7},
		{"don't", Neutral, 0.52}, // "don" and "t"
		{"one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty a b c d e f g h i j k l m n o p q r s t u v w x y z", Neutral, 0.95},
		{"good great excellent bad", Positive, 0.9},
		{"😀 good", Positive, 0.7},
	}
	for _, c := range cases {
		got := Predict(m, c.text)
		if got.Sentiment != c.want || got.Confidence != c.conf {
			t.Errorf("Predict(%q) = %s %.2f, want %s %.2f", c.text, got.Sentiment, got.Confidence, c.want, c.conf)
		}
	}
}

// TestSeedLexiconDifferential runs the seed's own Python expression over a
// corpus of ordinary and adversarial texts and requires identical answers.
func TestSeedLexiconDifferential(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed for the differential test against the seed: %v", err)
	}
	m := loadRepoModel(t, "v1").Model
	texts := differentialCorpus()
	in, err := json.Marshal(texts)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join("testdata", "seed_reference.py"))
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python reference: %v", err)
	}
	var want [][2]any
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("decode python output: %v", err)
	}
	if len(want) != len(texts) {
		t.Fatalf("python answered %d texts, sent %d", len(want), len(texts))
	}
	mismatches := 0
	for i, text := range texts {
		got := Predict(m, text)
		if string(got.Sentiment) != want[i][0] || got.Confidence != want[i][1] {
			mismatches++
			if mismatches <= 10 {
				t.Errorf("text %q: Go %s %.2f, Python %v %v", text, got.Sentiment, got.Confidence, want[i][0], want[i][1])
			}
		}
	}
	t.Logf("compared %d texts with the Python reference, %d mismatches", len(texts), mismatches)
}

// differentialCorpus mixes the evaluation set with random texts built from
// lexicon words, digits, underscores, accents, emoji and odd Unicode.
func differentialCorpus() []string {
	texts := []string{"", " ", "İ", "İgood", "ǅgood", "ΣΑΣ good", "K good", "ﬁne good", "good\u0301", "good\u00a0bad"}
	if f, err := os.Open(filepath.Join("..", "..", "data", "sentiment", "eval.csv")); err == nil {
		rows, _ := csv.NewReader(f).ReadAll()
		f.Close()
		for _, r := range rows[1:] {
			texts = append(texts, r[0])
		}
	}
	pieces := []string{"good", "GREAT", "Bad", "awful", "love", "hate", "best", "worst", "not", "the", "a",
		" ", " ", " ", ",", ".", "!", "?", "'", "_", "1", "²", "é", "café", "naïve", "😀", "👍", "İ", "ß", "\t", "\n",
		"-", "good-bad", "x", "ok", "sad", "perfect", "useless", "Ⅻ", "٣", "中文", "\u200d", "\ufe0f"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		var b strings.Builder
		for range 1 + rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		texts = append(texts, b.String())
	}
	return texts
}
