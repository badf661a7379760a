package model

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// An artifact directory's digest is its content address, the one definition
// that `platformctl model register` tags a registry version with and that
// ml-inference checks after every download:
//
//	digest   = "sha256:" + hex(sha256(manifest))
//	manifest = one line per regular file below the directory, sorted by path (bytewise):
//	           hex(sha256(file)) + "  " + slash-separated path relative to the directory + "\n"
//
// The manifest is exactly what sha256sum prints, so the digest can be checked
// by hand with coreutils:
//
//	cd models/v2 && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum
//
// Only file contents and paths count: not modes, times or empty directories,
// which a registry's artifact store does not keep. A symlink, device or other
// non-regular file is an error (an upload would follow or skip it, so the
// digest could not describe what the registry holds), and so is a path
// holding a newline or backslash (it would break the manifest's lines or
// MLflow's artifact paths), or a directory with no file at all.

// DigestPrefix starts every artifact digest.
const DigestPrefix = "sha256:"

// ManifestEntry is one file of an artifact directory.
type ManifestEntry struct {
	Path   string // slash-separated, relative to the directory
	SHA256 string // hex
	Size   int64
}

// Manifest lists the regular files below dir with their sha256, sorted by
// path.
func Manifest(dir string) ([]ManifestEntry, error) {
	var entries []ManifestEntry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: %s is not a regular file (%s); an artifact holds regular files only", dir, rel, d.Type())
		}
		if strings.ContainsAny(rel, "\n\r\\") {
			return fmt.Errorf("%s: the file name %q holds a newline or backslash", dir, rel)
		}
		sum, size, err := fileSHA256(path)
		if err != nil {
			return err
		}
		entries = append(entries, ManifestEntry{Path: rel, SHA256: sum, Size: size})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("artifact manifest: %w", err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("artifact manifest: %s holds no file", dir)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ManifestText is the manifest as the digest hashes it (sha256sum's format).
func ManifestText(entries []ManifestEntry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.SHA256)
		b.WriteString("  ")
		b.WriteString(e.Path)
		b.WriteByte('\n')
	}
	return b.String()
}

// DigestOf is the digest of a manifest.
func DigestOf(entries []ManifestEntry) string {
	sum := sha256.Sum256([]byte(ManifestText(entries)))
	return DigestPrefix + hex.EncodeToString(sum[:])
}

// Digest is the digest of the artifact directory dir.
func Digest(dir string) (string, error) {
	entries, err := Manifest(dir)
	if err != nil {
		return "", err
	}
	return DigestOf(entries), nil
}

// ErrDigestMismatch is an artifact whose content is not what its digest
// says.
var ErrDigestMismatch = errors.New("artifact digest mismatch")

// VerifyDigest checks that dir's digest is want.
func VerifyDigest(dir, want string) error {
	if !ValidDigest(want) {
		return fmt.Errorf("%s: %q is not an artifact digest (want %s followed by 64 hex digits)", dir, want, DigestPrefix)
	}
	got, err := Digest(dir)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: %s has %s, want %s", ErrDigestMismatch, dir, got, want)
	}
	return nil
}

// ValidDigest reports whether s has the form of an artifact digest.
func ValidDigest(s string) bool {
	h, ok := strings.CutPrefix(s, DigestPrefix)
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
