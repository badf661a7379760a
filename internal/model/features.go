package model

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// FeatureConfig says how the v3 model turns text into features. It is part of
// a hashed-logreg artifact's params; training (internal/train) and serving
// both build a Featurizer from it, so the two cannot drift apart.
type FeatureConfig struct {
	// HashBuckets is the number of hashed feature slots, a power of two.
	HashBuckets int `json:"hash_buckets"`
	// HashSeed selects the hash function (and so which n-grams collide).
	HashSeed uint64 `json:"hash_seed"`
	// WordNgrams is 1 (words) or 2 (words and pairs of adjacent tokens).
	WordNgrams int `json:"word_ngrams"`
	// CharNgramMin..CharNgramMax are the lengths of the character n-grams
	// taken from each word, framed as "<word>"; 0 and 0 for none.
	CharNgramMin int `json:"char_ngram_min"`
	CharNgramMax int `json:"char_ngram_max"`
	// NegationMarks adds, for each word in a negation's scope (as v2's rules
	// see it), a second feature "NOT_word".
	NegationMarks bool `json:"negation_marks"`
	// Lexicon is the rule-lexicon artifact (v2) whose analysis of the text
	// adds a few dense features; its path is relative to the artifact.
	Lexicon string `json:"lexicon"`
}

// Validate checks the config; errors name the field under params.features.
func (c FeatureConfig) Validate() error {
	switch {
	case c.HashBuckets < 2 || c.HashBuckets > 1<<24 || bits.OnesCount(uint(c.HashBuckets)) != 1:
		return fmt.Errorf("field \"params.features.hash_buckets\": %d must be a power of two in [2, 2^24]", c.HashBuckets)
	case c.WordNgrams != 1 && c.WordNgrams != 2:
		return fmt.Errorf("field \"params.features.word_ngrams\": %d must be 1 or 2", c.WordNgrams)
	case c.CharNgramMin < 0 || c.CharNgramMax < c.CharNgramMin || c.CharNgramMax > 8 || (c.CharNgramMin == 0) != (c.CharNgramMax == 0):
		return fmt.Errorf("field \"params.features.char_ngram_min\"/\"char_ngram_max\": %d..%d must be 0..0 or within 1..8", c.CharNgramMin, c.CharNgramMax)
	case c.Lexicon == "":
		return errors.New("field \"params.features.lexicon\" is required")
	}
	return nil
}

// Feature is one non-zero entry of a feature vector.
type Feature struct {
	Index uint32
	Value float32
}

// Dense features follow the hashed buckets, in this order.
const (
	denseCompound   = iota // v2's compound score in (-1, 1)
	densePositive          // v2's positive contributions, squashed into [0, 1)
	denseNegative          // v2's negative contributions, squashed into (-1, 0]
	denseV2Positive        // 1 if v2 says positive
	denseV2Negative        // 1 if v2 says negative
	numDense
)

// Featurizer turns text into tokens and tokens into a sparse feature vector:
// hashed word n-grams and character n-grams (each group scaled to unit L2
// norm), then v2's lexicon analysis as dense features. It is immutable and
// safe for concurrent use.
type Featurizer struct {
	cfg  FeatureConfig
	mask uint64
	seed uint64 // HashSeed, mixed
	lex  *RuleLexicon
}

// NewFeaturizer builds a featurizer on an already loaded v2 lexicon.
func NewFeaturizer(cfg FeatureConfig, lex *RuleLexicon) (*Featurizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if lex == nil {
		return nil, errors.New("featurizer needs a rule lexicon")
	}
	return &Featurizer{cfg: cfg, mask: uint64(cfg.HashBuckets - 1), seed: mix(cfg.HashSeed), lex: lex}, nil
}

// Config returns the configuration the featurizer was built with.
func (f *Featurizer) Config() FeatureConfig { return f.cfg }

// Dimensions is the length of the feature vectors (buckets plus dense).
func (f *Featurizer) Dimensions() int { return f.cfg.HashBuckets + numDense }

// Tokens standing for every user mention and every link: their text carries
// no sentiment, and each distinct one would only add noise.
const (
	TokenMention = "@user"
	TokenURL     = "<url>"
)

// Tokenize is v2's tokenizer (RuleLexicon.Tokenize) with three additions for
// social-media text: @mentions become TokenMention, links TokenURL, and a
// letter repeated more than twice is cut to two ("sooooo" -> "soo",
// "gooood" -> "good").
func (f *Featurizer) Tokenize(text string) []string {
	lower := strings.ToLower(text)
	tokens := make([]string, 0, len(lower)/5+1)
	for chunk := range strings.FieldsSeq(lower) {
		switch {
		case len(chunk) > 1 && chunk[0] == '@':
			tokens = append(tokens, TokenMention)
			continue
		case strings.HasPrefix(chunk, "http://") || strings.HasPrefix(chunk, "https://") || strings.HasPrefix(chunk, "www."):
			tokens = append(tokens, TokenURL)
			continue
		}
		n := len(tokens)
		tokens = f.lex.appendChunkTokens(tokens, chunk)
		for i := n; i < len(tokens); i++ {
			tokens[i] = squeezeRepeats(tokens[i])
		}
	}
	return tokens
}

// squeezeRepeats cuts runs of one letter longer than two to two. It
// allocates only when it changes something.
func squeezeRepeats(s string) string {
	run, prev, cut := 0, byte(0), false
	for i := 0; i < len(s); i++ {
		if s[i] == prev && s[i] >= 'a' && s[i] <= 'z' {
			if run++; run > 2 {
				cut = true
				break
			}
		} else {
			prev, run = s[i], 1
		}
	}
	if !cut {
		return s
	}
	b := make([]byte, 0, len(s))
	run, prev = 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == prev && s[i] >= 'a' && s[i] <= 'z' {
			if run++; run > 2 {
				continue
			}
		} else {
			prev, run = s[i], 1
		}
		b = append(b, s[i])
	}
	return string(b)
}

// Feature kinds, mixed into the hash so that a word, a word pair and a
// character n-gram with the same text land in different buckets.
const (
	tagWord uint64 = iota + 1
	tagPair
	tagNegated
	tagChars
	tagCharsStart = 1 << 8 // or-ed into tagChars: the n-gram starts the word ("<" in fastText)
	tagCharsEnd   = 1 << 9 // it ends the word (">")
)

// mix is the splitmix64 finaliser: it spreads the bits of a so that two
// combined hashes do not cancel.
func mix(a uint64) uint64 {
	a ^= a >> 30
	a *= 0xbf58476d1ce4e5b9
	a ^= a >> 27
	a *= 0x94d049bb133111eb
	a ^= a >> 31
	return a
}

func (f *Featurizer) bucket(tag, h uint64) uint32 {
	return uint32(mix(h^f.seed^tag*0x9e3779b97f4a7c15) & f.mask)
}

// Hashed features come in two groups, each scaled to unit L2 norm so that
// neither the length of a text nor that of its words changes the scale.
const (
	groupWords = iota // words, pairs and negation marks
	groupChars        // character n-grams
	numGroups
)

// maxCharRunes is the longest word that character n-grams are taken from: no
// real word is longer, and it keeps the offsets on the stack.
const maxCharRunes = 40

// hashedBatch is how many hashed features visitHashed hands over at a time.
// Handing them over in batches, not one call per feature, lets the weight
// lookups of a batch run in a tight loop whose loads (random rows of a table
// larger than the cache) overlap.
const hashedBatch = 128

// visitHashed lists the hashed features of tokens, group by group (all
// words, then all character n-grams), in a fixed order: it writes their
// indices into buf and calls flush(group, n) when buf[:n] is full or a group
// ends (n > 0). Indices may repeat (a word that occurs twice, two n-grams
// that collide): each one counts. Training (AppendFeatures) and serving
// (HashedLogReg.Probabilities) both walk the features with it; flush gets
// no slice, so buf stays on its owner's stack.
//
// A token's character n-grams depend on the token alone. If known is not
// nil, it is asked about each token before them, and when it says true they
// are left out: the caller has their sum (HashedLogReg's vocabulary).
func (f *Featurizer) visitHashed(tokens []string, buf *[hashedBatch]uint32, flush func(group, n int), known func(token string) bool) {
	n := 0
	emit := func(group int, index uint32) {
		buf[n] = index
		if n++; n == len(buf) {
			flush(group, n)
			n = 0
		}
	}
	var prev uint64
	scope := f.lex.newNegationScan()
	for i, t := range tokens {
		h := xxhash.Sum64String(t)
		emit(groupWords, f.bucket(tagWord, h))
		if f.cfg.WordNgrams >= 2 && i > 0 {
			emit(groupWords, f.bucket(tagPair, mix(prev)^h))
		}
		if f.cfg.NegationMarks && scope.next(i, t) && isWordToken(t) {
			emit(groupWords, f.bucket(tagNegated, h))
		}
		prev = h
	}
	if n > 0 {
		flush(groupWords, n)
		n = 0
	}
	if f.cfg.CharNgramMax == 0 {
		return
	}
	var offs [maxCharRunes + 1]int
	for _, t := range tokens {
		if known != nil && known(t) || !isWordToken(t) {
			continue
		}
		// offs[k] is the byte offset of rune k, offs[runes] = len(t).
		runes := 0
		for i := range t {
			if runes == maxCharRunes {
				runes = -1
				break
			}
			offs[runes] = i
			runes++
		}
		if runes < 0 {
			continue // longer than any word: a run-on hashtag or noise
		}
		offs[runes] = len(t)
		// The framed word "<t>" has runes+2 runes: '<' at 0, t's rune k at
		// k+1, '>' at runes+1. An n-gram covers framed runes first..last.
		for size := f.cfg.CharNgramMin; size <= f.cfg.CharNgramMax; size++ {
			for first := 0; first+size <= runes+2; first++ {
				last := first + size - 1
				tag := tagChars
				lo, hi := first-1, last-1 // rune range of t, inclusive
				if first == 0 {
					tag |= tagCharsStart
					lo = 0
				}
				if last == runes+1 {
					tag |= tagCharsEnd
					hi = runes - 1
				}
				if hi < lo {
					continue // "<>": a frame with no letters
				}
				emit(groupChars, f.bucket(tag, xxhash.Sum64String(t[offs[lo]:offs[hi+1]])))
			}
		}
	}
	if n > 0 {
		flush(groupChars, n)
	}
}

// groupScale is the value of each of n features of a group: 1/sqrt(n).
func groupScale(n int) float32 { return float32(1 / math.Sqrt(float64(n))) }

// denseFeatures are the values of the dense features (v2's analysis), in
// the order of the dense* constants; their indices follow the buckets.
func (f *Featurizer) denseFeatures(tokens []string) [numDense]float32 {
	a := f.lex.analyse(tokens)
	var d [numDense]float32
	d[denseCompound] = float32(a.Compound)
	d[densePositive] = float32(a.Positive / (1 + a.Positive))
	d[denseNegative] = float32(a.Negative / (1 - a.Negative))
	switch f.lex.classify(a).Sentiment {
	case Positive:
		d[denseV2Positive] = 1
	case Negative:
		d[denseV2Negative] = 1
	}
	return d
}

// AppendFeatures appends the feature vector of tokens to dst: the hashed
// features (visitHashed) with their group's scale, then the non-zero dense
// ones. Indices may repeat; a consumer adds their values.
func (f *Featurizer) AppendFeatures(dst []Feature, tokens []string) []Feature {
	start := len(dst)
	var count [numGroups]int
	var buf [hashedBatch]uint32
	f.visitHashed(tokens, &buf, func(group, n int) {
		for _, index := range buf[:n] {
			dst = append(dst, Feature{index, float32(group)})
		}
		count[group] += n
	}, nil)
	var scale [numGroups]float32
	for g, n := range count {
		if n > 0 {
			scale[g] = groupScale(n)
		}
	}
	for i := start; i < len(dst); i++ {
		dst[i].Value = scale[int(dst[i].Value)]
	}
	base := uint32(f.cfg.HashBuckets)
	for k, v := range f.denseFeatures(tokens) {
		if v != 0 {
			dst = append(dst, Feature{base + uint32(k), v})
		}
	}
	return dst
}
