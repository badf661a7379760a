package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func testFeaturizer(t testing.TB, cfg FeatureConfig) *Featurizer {
	t.Helper()
	lex, _, err := LoadRuleLexicon(filepath.Join("..", "..", "models", "v2"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Lexicon = "v2"
	f, err := NewFeaturizer(cfg, lex)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var testTime = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

var smallFeatures = FeatureConfig{HashBuckets: 1 << 16, HashSeed: 7, WordNgrams: 2, CharNgramMin: 1, CharNgramMax: 3, NegationMarks: true}

func TestFeaturizerTokenize(t *testing.T) {
	f := testFeaturizer(t, smallFeatures)
	got := f.Tokenize("@Bob check https://t.co/x www.x.org SOOOOO gooood!!! :) it’s")
	want := []string{TokenMention, "check", TokenURL, TokenURL, "soo", "good", "!", "!", "!", ":)", "it's"}
	if !slices.Equal(got, want) {
		t.Errorf("Tokenize = %q, want %q", got, want)
	}
}

func TestFeaturizerFeatures(t *testing.T) {
	f := testFeaturizer(t, smallFeatures)
	buckets := uint32(smallFeatures.HashBuckets)
	feats := f.AppendFeatures(nil, []string{"ab"})
	var words, chars, dense []Feature
	for i, ft := range feats {
		switch {
		case ft.Index >= buckets:
			dense = append(dense, ft)
		case i == 0:
			words = append(words, ft)
		default:
			chars = append(chars, ft)
		}
	}
	// "<ab>": a b (1-grams), <a ab b> (2), <ab ab> (3); the frames alone are
	// not n-grams.
	if len(words) != 1 || len(chars) != 7 {
		t.Fatalf("got %d word and %d character features, want 1 and 7: %v", len(words), len(chars), feats)
	}
	seen := map[uint32]bool{}
	for _, ft := range chars {
		seen[ft.Index] = true
		if math.Abs(float64(ft.Value)-1/math.Sqrt(7)) > 1e-6 {
			t.Errorf("character feature value %v, want 1/sqrt(7)", ft.Value)
		}
	}
	if len(seen) != 7 {
		t.Errorf("the 7 character n-grams of \"ab\" share buckets: %v", chars)
	}
	// "ab" has no valence: every dense feature is 0, so none is listed.
	if len(dense) != 0 {
		t.Errorf("dense features %v", dense)
	}

	// A negated word gets a NOT_ feature; a different seed moves buckets.
	plain := f.AppendFeatures(nil, []string{"is", "good"})
	negated := f.AppendFeatures(nil, []string{"not", "good"})
	if countBelow(negated, buckets) <= countBelow(plain, buckets) {
		t.Errorf("no negation mark: %v vs %v", negated, plain)
	}
	other := smallFeatures
	other.HashSeed++
	if g := testFeaturizer(t, other).AppendFeatures(nil, []string{"ab"}); g[0].Index == feats[0].Index && g[1].Index == feats[1].Index {
		t.Errorf("seed %d and %d hash \"ab\" alike", smallFeatures.HashSeed, other.HashSeed)
	}
	// A token longer than any word gets no character n-grams.
	long := strings.Repeat("x", maxCharRunes+1)
	if n := countBelow(f.AppendFeatures(nil, []string{long}), buckets); n != 1 {
		t.Errorf("%d hashed features for a %d-letter token, want 1", n, len(long))
	}
	// Dense features carry v2's verdict.
	good := f.AppendFeatures(nil, f.Tokenize("This is great"))
	if !slices.ContainsFunc(good, func(ft Feature) bool { return ft.Index == buckets+denseV2Positive && ft.Value == 1 }) {
		t.Errorf("no v2 positive feature for a positive text: %v", good[len(good)-4:])
	}
}

func countBelow(feats []Feature, n uint32) int {
	c := 0
	for _, ft := range feats {
		if ft.Index < n {
			c++
		}
	}
	return c
}

func TestFeatureConfigValidate(t *testing.T) {
	for _, c := range []struct {
		edit func(*FeatureConfig)
		want string
	}{
		{func(c *FeatureConfig) { c.HashBuckets = 1000 }, "hash_buckets"},
		{func(c *FeatureConfig) { c.WordNgrams = 3 }, "word_ngrams"},
		{func(c *FeatureConfig) { c.CharNgramMin = 4; c.CharNgramMax = 2 }, "char_ngram_min"},
		{func(c *FeatureConfig) { c.CharNgramMin = 0 }, "char_ngram_min"},
		{func(c *FeatureConfig) { c.Lexicon = "" }, "lexicon"},
	} {
		cfg := smallFeatures
		cfg.Lexicon = "v2"
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want it to name %s", cfg, err, c.want)
		}
	}
}

// writeTestArtifact writes a small hashed-logreg artifact next to a copy of
// v2 and returns its directory and params.
func writeTestArtifact(t *testing.T) (string, HashedLogRegParams) {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "v2"), os.DirFS(filepath.Join("..", "..", "models", "v2"))); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "v3")
	os.Mkdir(dir, 0o755)
	f := testFeaturizer(t, smallFeatures)
	_, lexSHA, err := LoadRuleLexicon(filepath.Join(root, "v2"))
	if err != nil {
		t.Fatal(err)
	}
	// Weights that make "good" positive and "bad" negative.
	w := Weights{Rows: f.Dimensions() + 1, Classes: 3, Values: make([]float32, (f.Dimensions()+1)*3)}
	for _, word := range []string{"good", "bad"} {
		class := 0
		if word == "bad" {
			class = 1
		}
		for _, ft := range f.AppendFeatures(nil, []string{word}) {
			if ft.Index < uint32(smallFeatures.HashBuckets) {
				w.Values[int(ft.Index)*3+class] += 2
			}
		}
	}
	w.Values[len(w.Values)-1] = 0.5 // bias: neutral by default
	var buf bytes.Buffer
	if err := WriteWeights(&buf, w); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "weights.bin"), buf.Bytes(), 0o644)
	sum := sha256.Sum256(buf.Bytes())
	words, err := EncodeVocabulary([]string{"bad", "good"})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "vocabulary.txt"), words, 0o644)
	vocabSum := sha256.Sum256(words)
	p := HashedLogRegParams{Labels: Labels, Features: smallFeatures, Weights: "weights.bin", WeightsSHA256: hex.EncodeToString(sum[:]), LexiconSHA256: lexSHA,
		Vocabulary: "vocabulary.txt", VocabularySHA256: hex.EncodeToString(vocabSum[:])}
	p.Features.Lexicon = "../v2"
	writeParams(t, dir, p)
	return dir, p
}

func writeParams(t *testing.T, dir string, p HashedLogRegParams) {
	t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	meta := Metadata{Name: "test", Version: "v3", Kind: KindHashedLogReg, Created: testTime, Params: raw}
	if err := WriteMetadata(filepath.Join(dir, MetadataFile), meta); err != nil {
		t.Fatal(err)
	}
}

func TestHashedLogRegLoadsAndPredicts(t *testing.T) {
	dir, _ := writeTestArtifact(t)
	v, err := LoadArtifact(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup // concurrent use: the race detector watches
	for range 4 {
		wg.Go(func() {
			for text, want := range map[string]Sentiment{"good": Positive, "BAD": Negative, "the": Neutral} {
				if got := Predict(v.Model, text); got.Sentiment != want || got.Confidence <= 0.33 || got.Confidence > 0.95 {
					t.Errorf("Predict(%q) = %+v, want %s", text, got, want)
				}
			}
		})
	}
	wg.Wait()
}

// TestHashedLogRegRefusesBadArtifacts plants one fault at a time.
func TestHashedLogRegRefusesBadArtifacts(t *testing.T) {
	cases := []struct {
		name string
		edit func(dir string, p *HashedLogRegParams)
		want string
	}{
		{"labels", func(_ string, p *HashedLogRegParams) { p.Labels = []Sentiment{Negative, Positive, Neutral} }, `field "params.labels"`},
		{"weights outside", func(_ string, p *HashedLogRegParams) { p.Weights = "../weights.bin" }, `field "params.weights"`},
		{"weights sha", func(_ string, p *HashedLogRegParams) { p.WeightsSHA256 = strings.Repeat("a", 64) }, `"params.weights_sha256"`},
		{"buckets", func(_ string, p *HashedLogRegParams) { p.Features.HashBuckets *= 2 }, `field "rows"`},
		{"lexicon missing", func(_ string, p *HashedLogRegParams) { p.Features.Lexicon = "../v9" }, `field "params.features.lexicon"`},
		{"lexicon changed", func(dir string, _ *HashedLogRegParams) {
			path := filepath.Join(dir, "..", "v2", "lexicon.tsv")
			data, _ := os.ReadFile(path)
			os.WriteFile(path, append(data, []byte("\nzzzgreat\t2.0\n")...), 0o644)
		}, `field "params.lexicon_sha256": the lexicon artifact ../v2 has changed`},
		{"training not an object", func(_ string, p *HashedLogRegParams) { p.Training = json.RawMessage(`[1]`) }, `field "params.training"`},
		{"vocabulary outside", func(_ string, p *HashedLogRegParams) { p.Vocabulary = "../vocabulary.txt" }, `field "params.vocabulary"`},
		{"vocabulary without sha", func(_ string, p *HashedLogRegParams) { p.VocabularySHA256 = "" }, `field "params.vocabulary_sha256"`},
		{"vocabulary sha", func(_ string, p *HashedLogRegParams) { p.VocabularySHA256 = strings.Repeat("a", 64) }, `"params.vocabulary_sha256" says`},
		{"vocabulary missing", func(dir string, _ *HashedLogRegParams) { os.Remove(filepath.Join(dir, "vocabulary.txt")) }, "read vocabulary"},
	}
	for _, c := range cases {
		dir, p := writeTestArtifact(t)
		c.edit(dir, &p)
		writeParams(t, dir, p)
		_, err := LoadArtifact(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), MetadataFile) {
			t.Errorf("%s: err %v, want %q naming model.json", c.name, err, c.want)
		}
	}
	// An unknown params field is an error, not a silently ignored setting.
	dir, _ := writeTestArtifact(t)
	path := filepath.Join(dir, MetadataFile)
	data, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(data, []byte(`"weights":`), []byte(`"wieghts": "x", "weights":`), 1), 0o644)
	if _, err := LoadArtifact(dir); err == nil || !strings.Contains(err.Error(), "wieghts") {
		t.Errorf("misspelt field: err %v", err)
	}
}

func TestFeaturizerAllocatesNothing(t *testing.T) {
	f := testFeaturizer(t, smallFeatures)
	tokens := f.Tokenize(text500)
	buf := make([]Feature, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { f.AppendFeatures(buf[:0], tokens) }); n != 0 {
		t.Errorf("AppendFeatures allocates %v times per call", n)
	}
}

// TestServingMatchesTrainingFeatures: the served probabilities equal softmax
// of the dot product of the weights with AppendFeatures' vector, the one
// training fits, on random weights and texts of every kind, with and
// without a vocabulary (whose words' character n-grams are summed at load).
func TestServingMatchesTrainingFeatures(t *testing.T) {
	dir, _ := writeTestArtifact(t)
	v, err := LoadArtifact(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := v.Model.(*HashedLogReg).f
	rng := rand.New(rand.NewPCG(3, 4))
	w := Weights{Rows: f.Dimensions() + 1, Classes: 3, Values: make([]float32, (f.Dimensions()+1)*3)}
	for i := range w.Values {
		w.Values[i] = float32(rng.NormFloat64())
	}
	texts := append(differentialCorpus()[:400], text60, text500, "not good at all!!! @bob http://x.y 😀")
	// The vocabulary of half the texts: the other half has words it lacks.
	vocabulary := f.Vocabulary(texts[:200], 1)
	plain, err := NewHashedLogReg(f, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	cached, err := NewHashedLogReg(f, w, vocabulary)
	if err != nil {
		t.Fatal(err)
	}
	known, unknown := 0, 0
	for _, text := range texts {
		tokens := f.Tokenize(text)
		z := [3]float64{}
		bias := w.Values[len(w.Values)-3:]
		for c := range z {
			z[c] = float64(bias[c])
		}
		for _, ft := range f.AppendFeatures(nil, tokens) {
			for c := range z {
				z[c] += float64(ft.Value) * float64(w.Values[int(ft.Index)*3+c])
			}
		}
		want := Softmax(z)
		for _, m := range []*HashedLogReg{plain, cached} {
			got := m.Probabilities(tokens)
			for c := range want {
				if math.Abs(want[c]-got[c]) > 1e-9 {
					t.Fatalf("%q (vocabulary of %d words): served %v, training's features give %v", text, len(m.words), got, want)
				}
			}
		}
		for _, tok := range tokens {
			if _, ok := cached.words[tok]; ok {
				known++
			} else if hasCharNgrams(tok) {
				unknown++
			}
		}
	}
	if known == 0 || unknown == 0 {
		t.Errorf("%d words in the vocabulary and %d outside: the test must see both", known, unknown)
	}
}

// TestVocabularyChangesOnlySpeed: the committed v3 answers the same with its
// vocabulary as without, on every text of the differential corpus.
func TestVocabularyChangesOnlySpeed(t *testing.T) {
	m := loadRepoModel(t, "v3").Model.(*HashedLogReg)
	if len(m.words) == 0 {
		t.Fatal("models/v3 has no vocabulary")
	}
	plain, err := NewHashedLogReg(m.f, Weights{Rows: m.f.Dimensions() + 1, Classes: 3, Values: m.w}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range append(differentialCorpus(), text60, text500) {
		tokens := m.Tokenize(text)
		got, want := m.Probabilities(tokens), plain.Probabilities(tokens)
		for c := range want {
			if math.Abs(want[c]-got[c]) > 1e-12 {
				t.Fatalf("%q: %v with the vocabulary, %v without", text, got, want)
			}
		}
	}
}

// TestHashedLogRegAllocatesNothing: scoring allocates nothing, with or
// without the vocabulary (tokenizing allocates what v2's tokenizer does).
func TestHashedLogRegAllocatesNothing(t *testing.T) {
	m := loadRepoModel(t, "v3").Model.(*HashedLogReg)
	plain, err := NewHashedLogReg(m.f, Weights{Rows: m.f.Dimensions() + 1, Classes: 3, Values: m.w}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{text60, text500} {
		tokens := m.Tokenize(text)
		for _, model := range []*HashedLogReg{m, plain} {
			if n := testing.AllocsPerRun(100, func() { model.Score(tokens) }); n != 0 {
				t.Errorf("Score allocates %v times (vocabulary of %d words, %d tokens)", n, len(model.words), len(tokens))
			}
		}
	}
}

// TestCommittedV3IsSelfContained: a registry hands a server one artifact
// directory, so models/v3 must load alone, away from models/v2; and its
// bundled lexicon must be models/v2's (LoadRuleLexicon's fingerprint), the
// one source of that lexicon.
func TestCommittedV3IsSelfContained(t *testing.T) {
	alone := filepath.Join(t.TempDir(), "v3")
	if err := os.CopyFS(alone, os.DirFS(filepath.Join("..", "..", "models", "v3"))); err != nil {
		t.Fatal(err)
	}
	v, err := LoadArtifact(alone)
	if err != nil {
		t.Fatalf("models/v3 does not load on its own: %v", err)
	}
	if p := Predict(v.Model, "I love this phone"); p.Sentiment != Positive {
		t.Errorf("v3 alone: %+v", p)
	}
	_, bundled, err := LoadRuleLexicon(filepath.Join(alone, "lexicon"))
	if err != nil {
		t.Fatal(err)
	}
	_, v2, err := LoadRuleLexicon(filepath.Join("..", "..", "models", "v2"))
	if err != nil {
		t.Fatal(err)
	}
	if bundled != v2 {
		t.Errorf("models/v3/lexicon fingerprints as %s, models/v2 as %s: retrain v3 (make train) after changing v2", bundled, v2)
	}
}
