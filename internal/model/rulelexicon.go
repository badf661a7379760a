package model

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// KindRuleLexicon is the artifact kind of v2: a graded-valence lexicon with
// phrases, negation, intensifiers, contrastive conjunctions and emoji.
const KindRuleLexicon = "rule-lexicon"

func init() {
	registerKind(KindRuleLexicon, newRuleLexicon)
}

// ruleLexiconParams is the "params" object of a rule-lexicon artifact. Every
// tunable number of the algorithm lives here, in the artifact, not in code.
type ruleLexiconParams struct {
	// Lexicon is a TSV file (token, valence in [-4, 4]) relative to the artifact.
	Lexicon string `json:"lexicon"`
	// Phrases are multi-word expressions whose meaning is not the sum of their
	// words ("waste of money", "hit the spot"), with a valence. A phrase with
	// valence 0 marks words that carry no sentiment in it ("works at").
	Phrases map[string]float64 `json:"phrases"`
	// Negators flip and damp the valence of the words that follow them.
	Negators []string `json:"negators"`
	// NegationWindow is how many tokens back a negator reaches.
	NegationWindow int `json:"negation_window"`
	// NegationFactor multiplies a negated valence ("not bad" is mildly good).
	NegationFactor float64 `json:"negation_factor"`
	// Boosters scale the next sentiment word: 0.3 means 30% stronger, -0.3 weaker.
	Boosters map[string]float64 `json:"boosters"`
	// Contrast words ("but") shift weight to the clause after them.
	Contrast       []string `json:"contrast"`
	ContrastBefore float64  `json:"contrast_before"`
	ContrastAfter  float64  `json:"contrast_after"`
	// Concessive words ("although") weaken their own clause.
	Concessive       []string `json:"concessive"`
	ConcessiveFactor float64  `json:"concessive_factor"`
	// QuestionFactor damps sentences that end in a question mark.
	QuestionFactor float64 `json:"question_factor"`
	// ExclamationBoost is added to the magnitude per '!' (at most 4).
	ExclamationBoost float64 `json:"exclamation_boost"`
	// Alpha normalises the sum into (-1, 1): s / sqrt(s*s + alpha).
	Alpha float64 `json:"alpha"`
	// NeutralBand: |compound| below it is neutral.
	NeutralBand float64 `json:"neutral_band"`
}

// RuleLexicon is the v2 classifier. Its algorithm:
//
//  1. Tokenize: lower-case words (inner apostrophes kept, curly ones
//     straightened), emoji, emoticons, and punctuation marks that bound
//     clauses (",", ".", "!", "?").
//  2. Each token (or phrase) with a valence contributes it, scaled by the
//     boosters just before it, flipped by a negator within the window in the
//     same clause, weighted by its place around "but"/"although", and damped
//     in questions.
//  3. The sum s becomes compound = s/sqrt(s²+alpha); inside the neutral band
//     the text is neutral.
//
// The confidence is a monotone function of |compound|, not a calibrated
// probability.
type RuleLexicon struct {
	p          ruleLexiconParams
	valence    map[string]float64
	phrases    map[string][]phrase // by first token
	negators   map[string]struct{}
	contrast   map[string]struct{}
	concessive map[string]struct{}
	emoticons  map[string]struct{}
}

type phrase struct {
	tokens  []string
	valence float64
}

func newRuleLexicon(dir string, raw json.RawMessage) (Model, error) {
	var p ruleLexiconParams
	if err := decodeParams(raw, &p); err != nil {
		return nil, err
	}
	switch {
	case p.Lexicon == "":
		return nil, errors.New("field \"params.lexicon\" is required")
	case p.Alpha <= 0:
		return nil, errors.New("field \"params.alpha\" must be > 0")
	case p.NeutralBand < 0 || p.NeutralBand >= 1:
		return nil, errors.New("field \"params.neutral_band\" must be in [0, 1)")
	case p.NegationWindow < 0:
		return nil, errors.New("field \"params.negation_window\" must be >= 0")
	}
	m := &RuleLexicon{
		p:          p,
		phrases:    map[string][]phrase{},
		negators:   wordSet(p.Negators),
		contrast:   wordSet(p.Contrast),
		concessive: wordSet(p.Concessive),
		emoticons:  map[string]struct{}{},
	}
	var err error
	if m.valence, err = readLexicon(filepath.Join(dir, p.Lexicon)); err != nil {
		return nil, err
	}
	for tok := range m.valence {
		if !isWordToken(tok) && !isEmojiToken(tok) {
			m.emoticons[tok] = struct{}{}
		}
	}
	for text, v := range p.Phrases {
		toks := m.Tokenize(text)
		if len(toks) < 2 {
			return nil, fmt.Errorf("field \"params.phrases\": %q must have at least two tokens", text)
		}
		m.phrases[toks[0]] = append(m.phrases[toks[0]], phrase{toks, v})
	}
	return m, nil
}

func readLexicon(path string) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("field \"params.lexicon\": %w", err)
	}
	defer f.Close()
	lex := map[string]float64{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		tok, val, ok := strings.Cut(text, "\t")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want \"token<TAB>valence\"", path, line)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || v < -4 || v > 4 {
			return nil, fmt.Errorf("%s:%d: valence %q must be a number in [-4, 4]", path, line, val)
		}
		tok = strings.ToLower(stripVariation(strings.TrimSpace(tok)))
		if prev, dup := lex[tok]; dup && prev != v {
			return nil, fmt.Errorf("%s:%d: token %q listed twice with different valences", path, line, tok)
		}
		lex[tok] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(lex) == 0 {
		return nil, fmt.Errorf("%s: lexicon is empty", path)
	}
	return lex, nil
}

// Clause-bounding punctuation tokens.
const (
	tokComma    = ","
	tokPeriod   = "."
	tokExclaim  = "!"
	tokQuestion = "?"
)

func isBoundary(t string) bool {
	return t == tokComma || t == tokPeriod || t == tokExclaim || t == tokQuestion
}

func isSentenceEnd(t string) bool {
	return t == tokPeriod || t == tokExclaim || t == tokQuestion
}

// Tokenize splits text into lower-case words, emoji, emoticons and clause
// punctuation. Words are substrings of the lower-cased text, so tokenizing
// allocates little beyond the slice.
func (m *RuleLexicon) Tokenize(text string) []string {
	lower := strings.ToLower(text)
	tokens := make([]string, 0, len(lower)/5+1)
	for chunk := range strings.FieldsSeq(lower) {
		tokens = m.appendChunkTokens(tokens, chunk)
	}
	return tokens
}

// appendChunkTokens tokenizes one lower-cased, whitespace-free chunk: an
// emoticon from the lexicon (possibly followed by punctuation) or words,
// emoji and punctuation.
func (m *RuleLexicon) appendChunkTokens(tokens []string, chunk string) []string {
	if _, ok := m.emoticons[chunk]; ok {
		return append(tokens, chunk)
	}
	if trimmed := strings.TrimRight(chunk, ".,!?"); trimmed != chunk {
		if _, ok := m.emoticons[trimmed]; ok {
			tokens = append(tokens, trimmed)
			return appendPunct(tokens, chunk[len(trimmed):])
		}
	}
	return appendChunk(tokens, chunk)
}

func appendPunct(tokens []string, s string) []string {
	for _, r := range s {
		if t := punctToken(r); t != "" {
			tokens = append(tokens, t)
		}
	}
	return tokens
}

func punctToken(r rune) string {
	switch r {
	case ',', ';', ':':
		return tokComma
	case '.', '…':
		return tokPeriod
	case '!':
		return tokExclaim
	case '?':
		return tokQuestion
	}
	return ""
}

// appendChunk tokenizes one whitespace-free, lower-cased chunk. A word is a
// run of letters and digits with inner apostrophes; curly apostrophes are
// straightened (the only case that builds a new string).
func appendChunk(tokens []string, s string) []string {
	start := -1    // byte offset of the current word, -1 when none
	curly := false // the current word has a non-ASCII apostrophe
	flush := func(end int) {
		if start < 0 {
			return
		}
		w := s[start:end]
		if curly {
			w = strings.NewReplacer("’", "'", "ʼ", "'").Replace(w)
		}
		if w = strings.Trim(w, "'"); w != "" {
			tokens = append(tokens, w)
		}
		start, curly = -1, false
	}
	for i, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if start < 0 {
				start = i
			}
		case r == '\'' || r == '’' || r == 'ʼ':
			if start >= 0 && r != '\'' {
				curly = true
			}
			// An apostrophe outside a word is dropped by the Trim in flush.
			if start < 0 {
				start = i
			}
		case r == '\uFE0F' || r == '\u200D' || unicode.Is(unicode.Sk, r) || unicode.Is(unicode.Mn, r):
			// Variation selectors, joiners, skin tones and combining marks
			// decorate the previous character; they carry no sentiment.
			if start >= 0 {
				flush(i)
			}
		case isEmojiRune(r):
			flush(i)
			tokens = append(tokens, string(r))
		default:
			flush(i)
			if t := punctToken(r); t != "" {
				tokens = append(tokens, t)
			}
		}
	}
	flush(len(s))
	return tokens
}

func isEmojiRune(r rune) bool {
	return r >= 0x2600 && (unicode.Is(unicode.So, r) || unicode.Is(unicode.Sm, r) && r >= 0x1F000)
}

func isEmojiToken(t string) bool {
	r, size := utf8.DecodeRuneInString(t)
	return size == len(t) && isEmojiRune(r)
}

func isWordToken(t string) bool {
	for _, r := range t {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' {
			return false
		}
	}
	return t != ""
}

func stripVariation(s string) string {
	return strings.ReplaceAll(s, "\uFE0F", "")
}

// Score implements steps 2 and 3 of the algorithm.
func (m *RuleLexicon) Score(tokens []string) Prediction {
	return m.classify(m.analyse(tokens))
}

// lexiconAnalysis is what the rules make of a text before it is classified:
// the v3 model (hashedlogreg.go) uses it as features.
type lexiconAnalysis struct {
	// Sum is the weighted sum of valences, with the exclamation boost.
	Sum float64
	// Compound is Sum squashed into (-1, 1).
	Compound float64
	// Positive and Negative are the sums of the positive and of the
	// negative weighted contributions (Negative <= 0), without the boost.
	Positive, Negative float64
}

// analyse implements step 2 and the squashing of step 3.
func (m *RuleLexicon) analyse(tokens []string) lexiconAnalysis {
	p := &m.p
	var sum, pos, neg float64
	exclaims := 0
	for start := 0; start < len(tokens); {
		end := start
		for end < len(tokens) && !isSentenceEnd(tokens[end]) {
			end++
		}
		sentEnd := end
		for end < len(tokens) && isSentenceEnd(tokens[end]) {
			if tokens[end] == tokExclaim {
				exclaims++
			}
			end++
		}
		s, sp, sn := m.scoreSentence(tokens[start:sentEnd])
		if sentEnd < len(tokens) && tokens[sentEnd] == tokQuestion {
			s *= p.QuestionFactor
			sp *= p.QuestionFactor
			sn *= p.QuestionFactor
		}
		sum += s
		pos += sp
		neg += sn
		start = end
	}
	if sum != 0 && exclaims > 0 {
		sum += math.Copysign(p.ExclamationBoost*float64(min(exclaims, 4)), sum)
	}
	return lexiconAnalysis{Sum: sum, Compound: sum / math.Sqrt(sum*sum+p.Alpha), Positive: pos, Negative: neg}
}

// classify implements the rest of step 3: the neutral band and confidence.
func (m *RuleLexicon) classify(a lexiconAnalysis) Prediction {
	p := &m.p
	sum, compound := a.Sum, a.Compound
	mag := math.Abs(compound)
	switch {
	case mag < p.NeutralBand || sum == 0:
		// Confident neutral when there is no signal at all, less so near the band.
		conf := 0.9
		if p.NeutralBand > 0 {
			conf = 0.9 - 0.35*mag/p.NeutralBand
		}
		return Prediction{Neutral, conf}
	case compound > 0:
		return Prediction{Positive, min(0.95, 0.5+0.5*mag)}
	default:
		return Prediction{Negative, min(0.95, 0.5+0.5*mag)}
	}
}

// scoreSentence sums the weighted valences of one sentence (no . ! ? inside),
// and its positive and negative contributions apart.
func (m *RuleLexicon) scoreSentence(toks []string) (sum, pos, neg float64) {
	p := &m.p
	// The last contrast word splits the sentence: "nice screen, but it lags".
	pivot := -1
	for i, t := range toks {
		if _, ok := m.contrast[t]; ok {
			pivot = i
		}
	}
	concessive := false
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t == tokComma {
			concessive = false
			continue
		}
		if _, ok := m.concessive[t]; ok {
			concessive = true
			continue
		}
		v, width := m.valenceAt(toks, i)
		if v == 0 {
			// A zero-valence phrase ("works at") neutralises its words.
			i += max(width, 1) - 1
			continue
		}
		// Boosters directly before the word (up to two: "really very good").
		scale := 1.0
		for j := i - 1; j >= 0 && j >= i-2; j-- {
			b, ok := p.Boosters[toks[j]]
			if !ok {
				break
			}
			scale += b
		}
		v *= scale
		if m.negated(toks, i) {
			v *= p.NegationFactor
		}
		switch {
		case pivot < 0:
		case i < pivot:
			v *= p.ContrastBefore
		default:
			v *= p.ContrastAfter
		}
		if concessive {
			v *= p.ConcessiveFactor
		}
		sum += v
		if v > 0 {
			pos += v
		} else {
			neg += v
		}
		i += width - 1
	}
	return sum, pos, neg
}

// valenceAt returns the valence of the phrase or token starting at i and how
// many tokens it spans (0 valence: nothing there).
func (m *RuleLexicon) valenceAt(toks []string, i int) (float64, int) {
	best, width := 0.0, 0
	for _, ph := range m.phrases[toks[i]] {
		n := len(ph.tokens)
		if n > width && i+n <= len(toks) && equalTokens(toks[i:i+n], ph.tokens) {
			best, width = ph.valence, n
		}
	}
	if width > 0 {
		return best, width
	}
	return m.valence[toks[i]], 1
}

func equalTokens(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// negated reports whether a negator stands within the window before i, in the
// same clause.
func (m *RuleLexicon) negated(toks []string, i int) bool {
	for j := i - 1; j >= 0 && j >= i-m.p.NegationWindow; j-- {
		t := toks[j]
		if isBoundary(t) {
			return false
		}
		if m.isNegator(t) {
			return true
		}
	}
	return false
}

func (m *RuleLexicon) isNegator(t string) bool {
	if _, ok := m.negators[t]; ok {
		return true
	}
	return strings.HasSuffix(t, "n't")
}

// negationScan answers negated(toks, i) for i = 0, 1, 2, ... in one pass
// over toks, looking each token up once instead of once per token after it:
// a token is negated when the last boundary or negator before it is a
// negator within the window.
type negationScan struct {
	m       *RuleLexicon
	mark    int  // index of the last boundary or negator seen, or -1
	negator bool // whether it is a negator
}

func (m *RuleLexicon) newNegationScan() negationScan { return negationScan{m: m, mark: -1} }

// next reports whether toks[i] is negated (negated(toks, i)); t is toks[i],
// and the calls must come in order of i from 0.
func (s *negationScan) next(i int, t string) bool {
	negated := s.negator && s.mark >= i-s.m.p.NegationWindow
	switch {
	case isBoundary(t):
		s.mark, s.negator = i, false
	case s.m.isNegator(t):
		s.mark, s.negator = i, true
	}
	return negated
}
