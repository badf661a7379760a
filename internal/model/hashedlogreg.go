package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/ml-platform/platform/internal/generate"
)

// KindHashedLogReg is the artifact kind of v3: multinomial logistic
// regression on hashed word and character n-grams plus v2's lexicon
// analysis, trained by `platformctl model train` (internal/train).
const KindHashedLogReg = "hashed-logreg"

func init() {
	registerKind(KindHashedLogReg, newHashedLogReg)
}

// HashedLogRegParams is the "params" object of a hashed-logreg artifact.
type HashedLogRegParams struct {
	// Labels is the order of the weight columns; it must equal Labels.
	Labels   []Sentiment   `json:"labels"`
	Features FeatureConfig `json:"features"`
	// Weights is the weights file (weights.go), inside the artifact.
	Weights       string `json:"weights"`
	WeightsSHA256 string `json:"weights_sha256"`
	// LexiconSHA256 fingerprints the v2 artifact the model was trained with
	// (LoadRuleLexicon): if v2's rules change, its features mean something
	// else and the model must be retrained.
	LexiconSHA256 string `json:"lexicon_sha256"`
	// Vocabulary is the vocabulary file (vocabulary.go), inside the
	// artifact: the words whose character n-grams are summed at load. It is
	// optional and changes only the speed.
	Vocabulary       string `json:"vocabulary,omitempty"`
	VocabularySHA256 string `json:"vocabulary_sha256,omitempty"`
	// Training records how the weights were made (data, hyperparameters). It
	// is owned and decoded strictly by internal/train; serving ignores it.
	Training json.RawMessage `json:"training,omitempty"`
}

// HashedLogReg is the v3 classifier: softmax(W·x + b) over the feature
// vector of Featurizer. The confidence is the winning class's probability,
// capped at 0.95 like every model's.
type HashedLogReg struct {
	f *Featurizer
	// w holds one row of len(Labels) weights per feature, then the bias row.
	w []float32
	// words holds, for each word of the vocabulary, the sum of the weight
	// rows of its character n-grams and their number.
	words map[string]wordChars
}

type wordChars struct {
	n   int
	sum [3]float64
}

func newHashedLogReg(dir string, raw json.RawMessage) (Model, error) {
	var p HashedLogRegParams
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	switch {
	case !slices.Equal(p.Labels, Labels):
		return nil, fmt.Errorf("field \"params.labels\": %q, this build's weight columns are %q", p.Labels, Labels)
	case p.Weights == "" || !filepath.IsLocal(p.Weights):
		return nil, fmt.Errorf("field \"params.weights\": %q must name a file inside the artifact", p.Weights)
	case len(p.WeightsSHA256) != 64:
		return nil, errors.New("field \"params.weights_sha256\" must be a hex sha256")
	case p.Vocabulary != "" && !filepath.IsLocal(p.Vocabulary):
		return nil, fmt.Errorf("field \"params.vocabulary\": %q must name a file inside the artifact", p.Vocabulary)
	case (p.Vocabulary == "") != (p.VocabularySHA256 == ""), p.Vocabulary != "" && len(p.VocabularySHA256) != 64:
		return nil, errors.New("field \"params.vocabulary_sha256\" must be the hex sha256 of params.vocabulary, and is given with it")
	case len(p.Training) > 0 && !bytes.HasPrefix(bytes.TrimSpace(p.Training), []byte("{")):
		return nil, errors.New("field \"params.training\" must be an object")
	}
	if err := p.Features.Validate(); err != nil {
		return nil, err
	}
	lex, sum, err := LoadRuleLexicon(filepath.Join(dir, p.Features.Lexicon))
	if err != nil {
		return nil, fmt.Errorf("field \"params.features.lexicon\": %w", err)
	}
	if sum != p.LexiconSHA256 {
		return nil, fmt.Errorf("field \"params.lexicon_sha256\": the lexicon artifact %s has changed since this model was trained (sha256 %s, trained with %s): retrain with `platformctl model train`", p.Features.Lexicon, sum, p.LexiconSHA256)
	}
	f, err := NewFeaturizer(p.Features, lex)
	if err != nil {
		return nil, err
	}
	w, err := ReadWeights(filepath.Join(dir, p.Weights), p.WeightsSHA256, f.Dimensions()+1, len(Labels))
	if err != nil {
		return nil, err
	}
	var vocabulary []string
	if p.Vocabulary != "" {
		if vocabulary, err = ReadVocabulary(filepath.Join(dir, p.Vocabulary), p.VocabularySHA256); err != nil {
			return nil, err
		}
	}
	return NewHashedLogReg(f, w, vocabulary)
}

// NewHashedLogReg builds the model from a featurizer, weights of its shape
// (features plus the bias, by len(Labels)) and a vocabulary (may be nil; see
// vocabulary.go); training uses it to score weights it has not written.
func NewHashedLogReg(f *Featurizer, w Weights, vocabulary []string) (*HashedLogReg, error) {
	if w.Rows != f.Dimensions()+1 || w.Classes != len(Labels) || len(w.Values) != w.Rows*w.Classes {
		return nil, fmt.Errorf("weights of %d x %d (%d values) do not fit %d features and %d labels", w.Rows, w.Classes, len(w.Values), f.Dimensions(), len(Labels))
	}
	m := &HashedLogReg{f: f, w: w.Values}
	if len(vocabulary) > 0 && f.cfg.CharNgramMax > 0 {
		m.words = make(map[string]wordChars, len(vocabulary))
		one := []string{""}
		for _, word := range vocabulary {
			one[0] = word
			var e wordChars
			var buf [hashedBatch]uint32
			f.visitHashed(one, &buf, func(group, n int) {
				if group == groupChars {
					e.n += n
					e.sum = m.sumRows(e.sum, buf[:n])
				}
			}, nil)
			m.words[word] = e
		}
	}
	return m, nil
}

// sumRows adds the weight rows at indices to s, in order. The rows' loads
// are independent of each other and of the sums: in a loop of their own,
// many are in flight at once.
func (m *HashedLogReg) sumRows(s [3]float64, indices []uint32) [3]float64 {
	w := m.w
	s0, s1, s2 := s[0], s[1], s[2]
	for _, index := range indices {
		row := w[index*3 : index*3+3 : index*3+3]
		s0 += float64(row[0])
		s1 += float64(row[1])
		s2 += float64(row[2])
	}
	return [3]float64{s0, s1, s2}
}

// LoadRuleLexicon loads a rule-lexicon artifact (v2) for its features and
// fingerprints what they depend on: the sha256 of its params (compact JSON),
// a zero byte, and its lexicon file. Its metrics and dates are left out, so
// `make evaluate` does not change the fingerprint.
func LoadRuleLexicon(dir string) (*RuleLexicon, string, error) {
	meta, err := ReadMetadata(filepath.Join(dir, MetadataFile))
	if err != nil {
		return nil, "", err
	}
	if meta.Kind != KindRuleLexicon {
		return nil, "", fmt.Errorf("%s is a %q artifact, want %q", dir, meta.Kind, KindRuleLexicon)
	}
	m, err := newRuleLexicon(dir, meta.Params)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", filepath.Join(dir, MetadataFile), err)
	}
	lex := m.(*RuleLexicon)
	var params bytes.Buffer
	if err := json.Compact(&params, meta.Params); err != nil {
		return nil, "", err
	}
	words, err := os.ReadFile(filepath.Join(dir, lex.p.Lexicon))
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	h.Write(params.Bytes())
	h.Write([]byte{0})
	h.Write(words)
	return lex, hex.EncodeToString(h.Sum(nil)), nil
}

// Featurizer returns the model's featurizer (training and tests use it).
func (m *HashedLogReg) Featurizer() *Featurizer { return m.f }

// Tokenize implements Model with the featurizer's tokenizer.
func (m *HashedLogReg) Tokenize(text string) []string { return m.f.Tokenize(text) }

// Score implements Model.
func (m *HashedLogReg) Score(tokens []string) Prediction {
	probs := m.Probabilities(tokens)
	best := 0
	for c := 1; c < len(probs); c++ {
		if probs[c] > probs[best] {
			best = c
		}
	}
	return Prediction{Sentiment: Labels[best], Confidence: min(0.95, probs[best])}
}

// Probabilities returns the softmax over Labels. It walks the features as
// AppendFeatures lists them for training, summing each group's weights and
// scaling the sum once; nothing escapes to the heap.
func (m *HashedLogReg) Probabilities(tokens []string) [3]float64 {
	var sum [numGroups][3]float64
	var count [numGroups]int
	var buf [hashedBatch]uint32
	// The vocabulary's words bring their character n-grams' sum: the
	// same rows, added in another order.
	var known func(string) bool
	var vocab [3]float64
	if m.words != nil {
		known = func(t string) bool {
			e, ok := m.words[t]
			if ok {
				vocab[0] += e.sum[0]
				vocab[1] += e.sum[1]
				vocab[2] += e.sum[2]
				count[groupChars] += e.n
			}
			return ok
		}
	}
	m.f.visitHashed(tokens, &buf, func(group, n int) {
		sum[group] = m.sumRows(sum[group], buf[:n])
		count[group] += n
	}, known)
	for c := range vocab {
		sum[groupChars][c] += vocab[c]
	}
	w := m.w
	bias := w[len(w)-3:]
	z := [3]float64{float64(bias[0]), float64(bias[1]), float64(bias[2])}
	for g := range sum {
		if count[g] > 0 {
			s := float64(groupScale(count[g]))
			for c := range z {
				z[c] += s * sum[g][c]
			}
		}
	}
	base := m.f.cfg.HashBuckets
	for k, v := range m.f.denseFeatures(tokens) {
		if v != 0 {
			row := w[(base+k)*3 : (base+k)*3+3]
			for c := range z {
				z[c] += float64(v) * float64(row[c])
			}
		}
	}
	return Softmax(z)
}

// Softmax turns logits into probabilities, stably.
func Softmax(z [3]float64) [3]float64 {
	top := max(z[0], z[1], z[2])
	var p [3]float64
	var sum float64
	for c := range z {
		p[c] = math.Exp(z[c] - top)
		sum += p[c]
	}
	for c := range p {
		p[c] /= sum
	}
	return p
}

// BundleRuleLexicon copies the rule-lexicon artifact src into dst, the
// directory a trained artifact keeps it in: its metadata (without metrics,
// which do not change its analysis) and its lexicon file. The copy must
// fingerprint as want (LoadRuleLexicon's sha256), the lexicon the model was
// trained with.
func BundleRuleLexicon(src, dst, want string) error {
	meta, err := ReadMetadata(filepath.Join(src, MetadataFile))
	if err != nil {
		return err
	}
	var p ruleLexiconParams
	if err := decodeParams(meta.Params, &p); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(src, MetadataFile), err)
	}
	words, err := os.ReadFile(filepath.Join(src, p.Lexicon))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	bundled := Metadata{
		Name:         meta.Name,
		Version:      meta.Version,
		Kind:         meta.Kind,
		Description:  "The " + meta.Version + " lexicon this model's dense features come from, bundled so the artifact is self-contained. " + meta.Description,
		Created:      meta.Created,
		TrainingDate: meta.TrainingDate,
		RunID:        meta.RunID,
		Params:       meta.Params,
	}
	if err := WriteMetadata(filepath.Join(dst, MetadataFile), bundled); err != nil {
		return err
	}
	if err := generate.WriteFile(filepath.Join(dst, p.Lexicon), words); err != nil {
		return err
	}
	if _, got, err := LoadRuleLexicon(dst); err != nil {
		return err
	} else if got != want {
		return fmt.Errorf("the copy of %s in %s fingerprints as %s, want %s", src, dst, got, want)
	}
	return nil
}
