package mlflow_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ml-platform/platform/internal/mlflow"
)

// testDirs uploads a tree with UploadDir and fetches it back with
// DownloadDir, then checks the limits and the refusals.
func testDirs(ctx context.Context, t *testing.T, c *mlflow.Client, w *written) {
	root := w.run.Info.ArtifactURI
	src := t.TempDir()
	tree := map[string]string{"model.json": `{"v":1}`, "data/lexicon.tsv": "good\t1\n", "data/deep/x.bin": string(w.weights[:1000]), "empty": ""}
	for name, content := range tree {
		p := filepath.Join(src, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.UploadDir(ctx, root, "dirs/model", src); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	files, n, err := c.DownloadDir(ctx, root, "dirs/model", dest, mlflow.DownloadLimits{})
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for name, content := range tree {
		size += int64(len(content))
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name)))
		if err != nil || string(got) != content {
			t.Errorf("%s: read back %d bytes (%v), want %d", name, len(got), err, len(content))
		}
	}
	if files != len(tree) || n != size {
		t.Errorf("DownloadDir wrote %d files, %d bytes; want %d, %d", files, n, len(tree), size)
	}

	for what, limits := range map[string]mlflow.DownloadLimits{
		"files": {MaxFiles: len(tree) - 1},
		"bytes": {MaxBytes: size - 1},
	} {
		_, _, err := c.DownloadDir(ctx, root, "dirs/model", t.TempDir(), limits)
		if !errors.Is(err, mlflow.ErrTooLarge) {
			t.Errorf("over the %s limit: %v, want ErrTooLarge", what, err)
		}
	}
	if _, _, err := c.DownloadDir(ctx, root, "dirs/missing", t.TempDir(), mlflow.DownloadLimits{}); !errors.Is(err, mlflow.ErrNotFound) {
		t.Errorf("a missing directory: %v, want ErrNotFound", err)
	}
	// A file already in dest is not overwritten.
	if _, _, err := c.DownloadDir(ctx, root, "dirs/model", dest, mlflow.DownloadLimits{}); err == nil {
		t.Error("a download over existing files succeeded")
	}
	if err := os.Symlink("model.json", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := c.UploadDir(ctx, root, "dirs/other", src); !errors.Is(err, mlflow.ErrInvalidArgument) {
		t.Errorf("a symlink in the tree: %v, want ErrInvalidArgument", err)
	}
	if got, _ := c.ListArtifacts(ctx, root, "dirs/other"); len(got) != 0 {
		t.Errorf("a refused upload uploaded %v", got)
	}
}
