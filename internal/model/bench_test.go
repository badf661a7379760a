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

func BenchmarkPredict(b *testing.B) {
	for _, version := range []string{"v1", "v2", "v3"} {
		m := loadRepoModel(b, version).Model
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
