package model

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestNegationScanMatchesNegated: the one-pass scan that v3's negation
// marks use answers as negated does, token by token, on every text of the
// differential corpus and on texts built around the window and boundaries.
func TestNegationScanMatchesNegated(t *testing.T) {
	lex, _, err := LoadRuleLexicon(filepath.Join("..", "..", "models", "v2"))
	if err != nil {
		t.Fatal(err)
	}
	if lex.p.NegationWindow != 3 {
		t.Fatalf("the cases below assume v2's negation window of 3, not %d", lex.p.NegationWindow)
	}
	scan := func(toks []string) []bool {
		s := lex.newNegationScan()
		got := make([]bool, len(toks))
		for i, tok := range toks {
			got[i] = s.next(i, tok)
		}
		return got
	}
	for _, c := range []struct {
		text string
		want []bool
	}{
		// not | a b c (window 3) | d: out of reach
		{"not a b c d", []bool{false, true, true, true, false}},
		// a boundary ends the scope (it is itself in it); a negator after it
		// starts another
		{"never good, bad don't like it", []bool{false, true, true, false, false, true, true}},
		// the nearest of a boundary and a negator decides
		{"good . not", []bool{false, false, false}},
		{"", []bool{}},
	} {
		toks := lex.Tokenize(c.text)
		if got := scan(toks); !slices.Equal(got, c.want) {
			t.Errorf("%q %q: scan %v, want %v", c.text, toks, got, c.want)
		}
	}
	for _, text := range differentialCorpus() {
		toks := lex.Tokenize(text)
		got := scan(toks)
		for i := range toks {
			if want := lex.negated(toks, i); got[i] != want {
				t.Fatalf("%q token %d (%q): scan %v, negated %v", toks, i, toks[i], got[i], want)
			}
		}
	}
}
