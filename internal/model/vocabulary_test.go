package model

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeVocabularyFile(t *testing.T, data string) (path, sum string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "vocabulary.txt")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256([]byte(data))
	return path, hex.EncodeToString(s[:])
}

func TestVocabulary(t *testing.T) {
	f := testFeaturizer(t, smallFeatures)
	texts := []string{"Good phone, GOOD price!", "good :) it's ok", "ok ok 😀 @bob http://x.y", "once"}
	got := f.Vocabulary(texts, 2)
	// "good" 3 times, "ok" 3; "it's", "phone", "price" and "once" once; the
	// emoji, the emoticon, the mention and the link are not words.
	if want := []string{"good", "ok"}; !slices.Equal(got, want) {
		t.Errorf("Vocabulary(min 2) = %q, want %q", got, want)
	}
	all := f.Vocabulary(texts, 1)
	if want := []string{"good", "it's", "ok", "once", "phone", "price"}; !slices.Equal(all, want) {
		t.Errorf("Vocabulary(min 1) = %q, want %q", all, want)
	}
	data, err := EncodeVocabulary(all)
	if err != nil {
		t.Fatal(err)
	}
	path, sum := writeVocabularyFile(t, string(data))
	back, err := ReadVocabulary(path, sum)
	if err != nil || !slices.Equal(back, all) {
		t.Errorf("round trip: %q, %v; want %q", back, err, all)
	}
	if path, sum := writeVocabularyFile(t, ""); true {
		if words, err := ReadVocabulary(path, sum); err != nil || len(words) != 0 {
			t.Errorf("empty file: %q, %v", words, err)
		}
	}
	if _, err := EncodeVocabulary([]string{"ok", "good"}); err == nil {
		t.Error("EncodeVocabulary took words out of order")
	}
}

// TestReadVocabularyRefusesBadFiles plants one fault at a time and expects
// an error naming the file and the line.
func TestReadVocabularyRefusesBadFiles(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"unsorted", "good\nbad\n", `:2: "bad" follows "good"`},
		{"repeated", "bad\ngood\ngood\n", `:3: "good" follows "good"`},
		{"not a word", "bad\ngood :)\n", `:2: "good :)" is not a word token`},
		{"empty line", "bad\n\ngood\n", `:2: "" is not a word token`},
		{"too long", strings.Repeat("x", maxCharRunes+1) + "\n", ":1: \"xxxx"},
		{"truncated", "bad\ngo", "the last line has no newline"},
	} {
		path, sum := writeVocabularyFile(t, c.data)
		_, err := ReadVocabulary(path, sum)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q naming %s", c.name, err, c.want, path)
		}
	}
	path, _ := writeVocabularyFile(t, "good\n")
	if _, err := ReadVocabulary(path, strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), `"params.vocabulary_sha256"`) {
		t.Errorf("wrong sha256: err %v", err)
	}
}
