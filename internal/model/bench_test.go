package model

import (
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/cputime"
)

// Texts of the two sizes the API sees: a typical review (60 characters) and
// the longest accepted (500).
var (
	text60  = "The battery life is great but the screen is not bright! :)"
	text500 = strings.Repeat("Honestly the delivery was late and support was not helpful, but the blender itself is excellent. ", 6)[:500]
)

// BenchmarkPredict runs each committed version on both texts, and v3
// without its vocabulary ("v3-novocab"): every word's character n-grams
// hashed and summed per request, the cost of words the training data did not
// have twice.
func BenchmarkPredict(b *testing.B) {
	v3 := loadRepoModel(b, "v3").Model.(*HashedLogReg)
	novocab, err := NewHashedLogReg(v3.f, Weights{Rows: v3.f.Dimensions() + 1, Classes: 3, Values: v3.w}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, version := range []string{"v1", "v2", "v3", "v3-novocab"} {
		var m Model = novocab
		if version != "v3-novocab" {
			m = loadRepoModel(b, version).Model
		}
		for _, tc := range []struct {
			name, text string
		}{{"60chars", text60}, {"500chars", text500}} {
			b.Run(version+"/"+tc.name, func(b *testing.B) {
				b.ReportAllocs()
				cpu := cputime.Start()
				for b.Loop() {
					Predict(m, tc.text)
				}
				cpu.Report(b)
			})
		}
	}
}

// BenchmarkLoad loads every committed version, as a server does at start.
func BenchmarkLoad(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		for _, version := range []string{"v1", "v2", "v3"} {
			loadRepoModel(b, version)
		}
	}
}
