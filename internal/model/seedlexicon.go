package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// KindSeedLexicon is the artifact kind of v1: the original service's
// rule-based lexicon, reproduced answer for answer.
const KindSeedLexicon = "seed-lexicon"

func init() {
	registerKind(KindSeedLexicon, newSeedLexicon)
}

type seedLexiconParams struct {
	Positive []string `json:"positive"`
	Negative []string `json:"negative"`
}

// SeedLexicon reproduces the original Python classifier exactly:
//
//	words = set(re.findall(r'\b[a-z]+\b', text.lower()))
//	pos, neg = len(words & POSITIVE), len(words & NEGATIVE)
//	pos > neg  -> positive, min(0.95, 0.6 + 0.1*pos)
//	neg > pos  -> negative, min(0.95, 0.6 + 0.1*neg)
//	otherwise  -> neutral,  0.5 + 0.01*len(words)
//	then cap at 0.95 and round to two decimals.
type SeedLexicon struct {
	positive map[string]struct{}
	negative map[string]struct{}
}

func newSeedLexicon(_ string, raw json.RawMessage) (Model, error) {
	var p seedLexiconParams
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	if len(p.Positive) == 0 || len(p.Negative) == 0 {
		return nil, errors.New("params.positive and params.negative must both be non-empty")
	}
	m := &SeedLexicon{positive: wordSet(p.Positive), negative: wordSet(p.Negative)}
	for w := range m.positive {
		if _, both := m.negative[w]; both {
			return nil, fmt.Errorf("params: word %q is in both positive and negative", w)
		}
	}
	return m, nil
}

func wordSet(words []string) map[string]struct{} {
	s := make(map[string]struct{}, len(words))
	for _, w := range words {
		s[w] = struct{}{}
	}
	return s
}

// Tokenize returns the distinct words of text the way Python's
// re.findall(r'\b[a-z]+\b', text.lower()) finds them, in order of first
// appearance.
//
// Python's \b is a Unicode word boundary (\w is any alphanumeric character or
// underscore), so a run of [a-z] counts only when the whole maximal run of word
// characters around it is [a-z]: "café" and "good1" yield nothing. Go's regexp
// \b is ASCII-only and would match "caf", hence this hand-written scanner.
func (m *SeedLexicon) Tokenize(text string) []string {
	lower := pythonLower(text)
	var words []string
	seen := make(map[string]struct{}, 8)
	i := 0
	for i < len(lower) {
		r, size := utf8.DecodeRuneInString(lower[i:])
		if !isPythonWordRune(r) {
			i += size
			continue
		}
		// A maximal run of word characters; it is a match iff it is all a-z.
		start, ascii := i, true
		for i < len(lower) {
			r, size = utf8.DecodeRuneInString(lower[i:])
			if !isPythonWordRune(r) {
				break
			}
			if r < 'a' || r > 'z' {
				ascii = false
			}
			i += size
		}
		if !ascii {
			continue
		}
		w := lower[start:i]
		if _, dup := seen[w]; !dup {
			seen[w] = struct{}{}
			words = append(words, w)
		}
	}
	return words
}

// Score counts distinct positive and negative words.
func (m *SeedLexicon) Score(words []string) Prediction {
	var pos, neg int
	for _, w := range words {
		if _, ok := m.positive[w]; ok {
			pos++
		} else if _, ok := m.negative[w]; ok {
			neg++
		}
	}
	var p Prediction
	switch {
	case pos > neg:
		p = Prediction{Positive, min(0.95, 0.6+0.1*float64(pos))}
	case neg > pos:
		p = Prediction{Negative, min(0.95, 0.6+0.1*float64(neg))}
	default:
		p = Prediction{Neutral, 0.5 + 0.01*float64(len(words))}
	}
	p.Confidence = min(p.Confidence, 0.95)
	return p
}

// isPythonWordRune reports whether Python's re module treats r as \w in a str
// pattern: alphanumeric (letters, and characters with a numeric value) or '_'.
func isPythonWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

// pythonLower is str.lower(): Unicode full case mapping. It differs from
// strings.ToLower only for U+0130 (İ), which lowers to "i" + U+0307, and the
// final-sigma rule, which cannot produce ASCII letters and so never changes
// which words match.
func pythonLower(s string) string {
	if !strings.ContainsRune(s, '\u0130') {
		return strings.ToLower(s)
	}
	return strings.ToLower(strings.ReplaceAll(s, "\u0130", "i\u0307"))
}
