package evaluate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/model"
)

var semevalPath = filepath.Join("..", "..", "data", "semeval", "semeval-2013-2016-subtask-a.tsv")

// TestLoadSemEvalDecodesRealTweets checks the decoding on lines of the
// vendored file, one per kind of artefact.
func TestLoadSemEvalDecodesRealTweets(t *testing.T) {
	ds, err := LoadSemEval(semevalPath)
	if err != nil {
		t.Fatal(err)
	}
	byLine := map[int]Example{}
	for _, ex := range ds.Examples {
		byLine[ex.Line] = ex
	}
	cases := []struct {
		line  int
		split string
		label model.Sentiment
		want  string
	}{
		// \u2019 in a 2013 text.
		{2, "2013train", model.Positive, "Gas by my house hit $3.39!!!! I’m going to Chapel Hill on Sat. :)"},
		// CSV-wrapped, \u002c, and \"""" (a quote escaped, then doubled twice).
		{61, "2013train", model.Neutral, `When my professor passes out candy and says "a very small amount of that may be from Valentines day, just so you know"`},
		// A backslash that is part of an emoticon stays.
		{11893, "2013test", model.Positive, `Maroon5 and The Cab make me crazy!!! when I went to see they concert on last monday. I love you guys!! \(^o^)/`},
		// An HTML entity; the quotes are the tweet's own (not CSV: one is unpaired).
		{19233, "2016train", model.Positive, `"@Google & @Lenovo fell in love with the same e". Does this make @Microsoft the 3rd wheel? http://t.co/kuHeZJ3h3f`},
		// CSV-wrapped with doubled inner quotes.
		{29097, "2016test", model.Positive, `Excited to read "Go Set a Watchman" on Tuesday.  But can it possibly live up to "To Kill a Mockingbird?"  Any opinions?`},
		// CSV-wrapped, ending in an emoticon's backslash.
		{30737, "2016test", model.Positive, `Really has to start watching the Sharknado movies now. They'e already on 3 and announcing a 4th movie, and I have yet to see even 1 /o\`},
	}
	for _, c := range cases {
		ex, ok := byLine[c.line]
		if !ok {
			t.Errorf("line %d not loaded", c.line)
			continue
		}
		if ex.Text != c.want || ex.Category != c.split || ex.Label != c.label {
			t.Errorf("line %d: got %s %s %q\nwant %s %s %q", c.line, ex.Category, ex.Label, ex.Text, c.split, c.label, c.want)
		}
	}
	// No escape survives anywhere in the file.
	for _, ex := range ds.Examples {
		if strings.Contains(ex.Text, `\u`) || strings.Contains(ex.Text, `\"`) || strings.Contains(ex.Text, "&amp;") {
			t.Errorf("line %d still has an escape: %q", ex.Line, ex.Text)
		}
	}
	counts := map[string]int{}
	for _, ex := range ds.Examples {
		counts[ex.Category]++
	}
	if len(ds.Examples) != 49600 || counts["2016test"] != 20510 {
		t.Errorf("loaded %d tweets, %d in 2016test; the README says 49,600 and 20,510", len(ds.Examples), counts["2016test"])
	}
}

func TestDecodeTweet(t *testing.T) {
	cases := map[string]string{
		`plain`:                `plain`,
		`it\u2019s`:            `it’s`,
		`\ud83d\ude00 smile`:   "😀 smile", // a surrogate pair
		`lone \ud83d end`:      "lone \uFFFD end",
		`\u00zz not hex`:       `\u00zz not hex`,
		`trailing \`:           `trailing \`,
		`"quoted ""word"" ok"`: `quoted "word" ok`,
		`"odd " quote"`:        `"odd " quote"`,
		`"`:                    `"`,
		`a &lt;3 b &amp; c`:    `a <3 b & c`,
		`fish &amp;amp; chips`: `fish & chips`,
	}
	for in, want := range cases {
		if got := DecodeTweet(in); got != want {
			t.Errorf("DecodeTweet(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadSemEvalErrorsNameLineAndField(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"split\tlabel\ttext\n2013train\thappy\tfine\n": `:2: field "label"`,
		"split,label,text\n":                           `:1: header`,
		"split\tlabel\ttext\n2013train\tpositive\n":    `:2: want 3 tab-separated fields`,
		"split\tlabel\ttext\n2013train\tpositive\t \n": `:2: field "text"`,
		"split\tlabel\ttext\n\tpositive\tok\n":         `:2: field "split"`,
		"split\tlabel\ttext\n":                         `no examples`,
	}
	for content, want := range cases {
		p := filepath.Join(dir, "d.tsv")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSemEval(p); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: err %v, want %q naming %s", content, err, want, p)
		}
	}
}
