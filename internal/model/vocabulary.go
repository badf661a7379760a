package model

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

// A vocabulary file lists, one per line in byte order, the words whose
// character n-grams a hashed-logreg model sums once, when it loads, instead
// of on every request: a word's n-grams depend on the word alone, so their
// weights add up to the same sum wherever it occurs. It is a speed-up only:
// the model's answers are the same with any vocabulary or none (up to the
// order of a floating-point sum). Training writes the words it saw at least
// VocabularyMinCount times.
const (
	// VocabularyMinCount is how many times training must see a word to list
	// it: a word seen once is mostly a typo or a one-off hashtag.
	VocabularyMinCount = 2
	// maxVocabulary bounds the words a file may list (memory at load).
	maxVocabulary = 1 << 20
)

// Vocabulary returns the word tokens of texts (as Tokenize makes them) that
// occur at least minCount times and have character n-grams, in byte order:
// the contents of a vocabulary file.
func (f *Featurizer) Vocabulary(texts []string, minCount int) []string {
	count := map[string]int{}
	for _, text := range texts {
		for _, t := range f.Tokenize(text) {
			if hasCharNgrams(t) {
				count[t]++
			}
		}
	}
	var words []string
	for w, n := range count {
		if n >= minCount {
			words = append(words, w)
		}
	}
	slices.Sort(words)
	return words
}

// hasCharNgrams reports whether visitHashed takes character n-grams from
// token t: a word token of at most maxCharRunes runes.
func hasCharNgrams(t string) bool {
	return isWordToken(t) && utf8.RuneCountInString(t) <= maxCharRunes
}

// EncodeVocabulary is the vocabulary file of words, which must be in byte
// order without repeats.
func EncodeVocabulary(words []string) ([]byte, error) {
	if _, err := checkVocabulary(words); err != nil {
		return nil, fmt.Errorf("vocabulary: %w", err)
	}
	var b strings.Builder
	for _, w := range words {
		b.WriteString(w)
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// ReadVocabulary reads and validates a vocabulary file: its sha256 must be
// wantSHA256 and every line a word token (hasCharNgrams), in byte order
// without repeats. Errors name the file and line.
func ReadVocabulary(path, wantSHA256 string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read vocabulary: %w", err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != wantSHA256 {
		return nil, fmt.Errorf("%s: sha256 is %s, model.json field \"params.vocabulary_sha256\" says %s", path, got, wantSHA256)
	}
	text := string(data)
	if text != "" && !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("%s: the last line has no newline (truncated file?)", path)
	}
	words := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if text == "" {
		words = nil
	}
	if line, err := checkVocabulary(words); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", path, line, err)
	}
	return words, nil
}

// checkVocabulary returns the 1-based line of the first bad word.
func checkVocabulary(words []string) (int, error) {
	if len(words) > maxVocabulary {
		return maxVocabulary + 1, fmt.Errorf("more than %d words", maxVocabulary)
	}
	for i, w := range words {
		switch {
		case !hasCharNgrams(w):
			return i + 1, fmt.Errorf("%q is not a word token of at most %d letters, digits and apostrophes", w, maxCharRunes)
		case i > 0 && w <= words[i-1]:
			return i + 1, fmt.Errorf("%q follows %q: words must be in byte order, each once", w, words[i-1])
		}
	}
	return 0, nil
}
