package model

import (
	"slices"
	"testing"
)

// FuzzModels: every model answers every string with a valid label and a
// confidence in [0, 0.95], the same answer each time, without panicking.
func FuzzModels(f *testing.F) {
	for _, s := range []string{"", "good", "not bad at all!!!", "İ ﬁne 😀👍🏽 :) :-( <3", "but but but", "no", "\xff\xfe", "though, although; yet?"} {
		f.Add(s)
	}
	models := []*Version{loadRepoModel(f, "v1"), loadRepoModel(f, "v2"), loadRepoModel(f, "v3")}
	f.Fuzz(func(t *testing.T, text string) {
		for _, v := range models {
			p := Predict(v.Model, text)
			if !slices.Contains(Labels, p.Sentiment) || p.Confidence < 0 || p.Confidence > 0.95 || p.Confidence != Round2(p.Confidence) {
				t.Fatalf("%s(%q) = %+v", v.Meta.Version, text, p)
			}
			if again := Predict(v.Model, text); again != p {
				t.Fatalf("%s(%q) not deterministic: %+v then %+v", v.Meta.Version, text, p, again)
			}
		}
	})
}
