package model

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustDigest(t *testing.T, dir string) string {
	t.Helper()
	d, err := Digest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDigestMatchesCoreutils: the documented shell pipeline, an
// implementation nobody here wrote, gives the same digest for every
// artifact in models/ and for a tree with nested directories.
func TestDigestMatchesCoreutils(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("no sha256sum (coreutils) on this machine")
	}
	dirs, _ := filepath.Glob(filepath.Join("..", "..", "models", "*"))
	dirs = append(dirs, writeTree(t, map[string]string{"model.json": "{}", "a/b/c.bin": "x", "a/B.txt": "y", "Z": ""}))
	for _, dir := range dirs {
		cmd := exec.Command("bash", "-c", `find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		want := DigestPrefix + strings.Fields(string(out))[0]
		if got := mustDigest(t, dir); got != want {
			t.Errorf("%s: Digest %s, coreutils %s", dir, got, want)
		}
	}
}

func TestDigestCoversContentAndPathsOnly(t *testing.T) {
	files := map[string]string{"model.json": `{"kind":"x"}`, "data/lexicon.tsv": "good\t1\n"}
	base := mustDigest(t, writeTree(t, files))

	// Not modes, times or empty directories.
	dir := writeTree(t, files)
	os.Chmod(filepath.Join(dir, "model.json"), 0o600)
	os.Chtimes(filepath.Join(dir, "model.json"), time.Unix(0, 0), time.Unix(0, 0))
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)
	if got := mustDigest(t, dir); got != base {
		t.Errorf("mode, time or an empty directory changed the digest: %s vs %s", got, base)
	}
	if !ValidDigest(base) {
		t.Errorf("%s is not a valid digest", base)
	}

	// Every byte and every name does.
	changed := map[string]map[string]string{
		"a byte of a file":  {"model.json": `{"kind":"y"}`, "data/lexicon.tsv": "good\t1\n"},
		"a file renamed":    {"model.json": `{"kind":"x"}`, "data/lexicon2.tsv": "good\t1\n"},
		"a file moved":      {"model.json": `{"kind":"x"}`, "lexicon.tsv": "good\t1\n"},
		"a file added":      {"model.json": `{"kind":"x"}`, "data/lexicon.tsv": "good\t1\n", "x": ""},
		"contents swapped":  {"model.json": "good\t1\n", "data/lexicon.tsv": `{"kind":"x"}`},
		"a trailing byte":   {"model.json": `{"kind":"x"}`, "data/lexicon.tsv": "good\t1\n\n"},
		"an empty file too": {"model.json": `{"kind":"x"}`, "data/lexicon.tsv": "good\t1\n", "data/.keep": ""},
	}
	for what, f := range changed {
		if got := mustDigest(t, writeTree(t, f)); got == base {
			t.Errorf("%s: digest unchanged", what)
		}
	}
}

func TestDigestRefusesWhatARegistryCannotHold(t *testing.T) {
	if _, err := Digest(t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds no file") {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := Digest(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing directory accepted")
	}
	dir := writeTree(t, map[string]string{"model.json": "{}"})
	if err := os.Symlink("model.json", filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := Digest(dir); err == nil || !strings.Contains(err.Error(), "link.json is not a regular file") {
		t.Errorf("symlink: %v", err)
	}
	dir = writeTree(t, map[string]string{"model.json": "{}", "bad\nname": ""})
	if _, err := Digest(dir); err == nil || !strings.Contains(err.Error(), "newline") {
		t.Errorf("newline in a name: %v", err)
	}
}

func TestVerifyDigest(t *testing.T) {
	dir := writeTree(t, map[string]string{"model.json": "{}"})
	d := mustDigest(t, dir)
	if err := VerifyDigest(dir, d); err != nil {
		t.Errorf("own digest: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "model.json"), []byte("{ }"), 0o644)
	if err := VerifyDigest(dir, d); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("changed file: %v, want ErrDigestMismatch", err)
	}
	for _, bad := range []string{"", "sha256:", "md5:" + strings.Repeat("0", 64), DigestPrefix + strings.Repeat("A", 64), DigestPrefix + strings.Repeat("0", 63)} {
		if err := VerifyDigest(dir, bad); err == nil || errors.Is(err, ErrDigestMismatch) {
			t.Errorf("VerifyDigest(%q): %v, want a malformed-digest error", bad, err)
		}
	}
}
