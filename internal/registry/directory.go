package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/ml-platform/platform/internal/model"
)

// Directory is a Source that reads every immediate subdirectory of Root
// holding a model.json (models/v1, models/v2, ...).
type Directory struct {
	Root string
}

func (d Directory) String() string { return "dir:" + d.Root }

// artifactDirs lists the subdirectories that hold a metadata file, sorted.
func (d Directory) artifactDirs() ([]string, error) {
	entries, err := os.ReadDir(d.Root)
	if err != nil {
		return nil, fmt.Errorf("read model directory: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		dir := filepath.Join(d.Root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, model.MetadataFile)); err == nil {
			dirs = append(dirs, dir)
		}
	}
	sort.Strings(dirs)
	return dirs, nil
}

// Load reads every artifact; one bad artifact fails the whole load.
func (d Directory) Load(ctx context.Context) ([]Entry, error) {
	dirs, err := d.artifactDirs()
	if err != nil {
		return nil, err
	}
	versions := make([]Entry, 0, len(dirs))
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, err := model.LoadArtifact(dir)
		if err != nil {
			return nil, err
		}
		versions = append(versions, Entry{Version: v})
	}
	return versions, nil
}

// Fingerprint hashes the name, size and modification time of every file in
// every artifact directory. (Kubernetes updates mounted volumes by swapping a
// symlink, which changes these too.)
func (d Directory) Fingerprint(context.Context) (string, error) {
	dirs, err := d.artifactDirs()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := os.Stat(path) // follow symlinks
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00%d\x00", path, info.Size(), info.ModTime().UnixNano())
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("fingerprint %s: %w", dir, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
