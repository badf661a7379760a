package mlflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// UploadDir uploads every regular file below localDir to relPath below
// artifactURI, keeping the tree (MLflow's log_artifacts). Anything but
// regular files and directories (a symlink, a device) is an error, found
// before the first upload.
func (c *Client) UploadDir(ctx context.Context, artifactURI, relPath, localDir string) error {
	var files []string
	err := filepath.WalkDir(localDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(localDir, p)
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%w: %s is not a regular file", ErrInvalidArgument, p)
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return fmt.Errorf("mlflow: upload %s: %w", localDir, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("mlflow: upload %s: %w: no file to upload", localDir, ErrInvalidArgument)
	}
	for _, rel := range files {
		if err := c.UploadFile(ctx, artifactURI, path.Join(relPath, rel), filepath.Join(localDir, filepath.FromSlash(rel))); err != nil {
			return err
		}
	}
	return nil
}

// DownloadLimits bound what DownloadDir fetches, so that a registry entry
// cannot fill the disk (zero: no bound).
type DownloadLimits struct {
	MaxFiles int
	MaxBytes int64
}

// ErrTooLarge is a download over its DownloadLimits.
var ErrTooLarge = errors.New("artifact over the download limit")

// DownloadDir fetches every file below relPath ("" for the root) of
// artifactURI into the directory dest, keeping the tree, and returns how
// many files and bytes it wrote. dest must exist; nothing is written outside
// it (the paths the server lists are checked, and files are created through
// an os.Root). An empty listing is ErrNotFound: MLflow lists a missing
// directory as empty. On error dest holds part of the tree; the caller
// removes it.
func (c *Client) DownloadDir(ctx context.Context, artifactURI, relPath, dest string, limits DownloadLimits) (files int, bytes int64, err error) {
	var all []FileInfo
	if err := c.listTree(ctx, artifactURI, relPath, &all, limits); err != nil {
		return 0, 0, err
	}
	if len(all) == 0 {
		return 0, 0, fmt.Errorf("mlflow: download %s/%s: %w: no file there", artifactURI, relPath, ErrNotFound)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return 0, 0, fmt.Errorf("mlflow: download into %s: %w", dest, err)
	}
	defer root.Close()
	for _, f := range all {
		rel := f.Path
		if relPath != "" {
			rel = strings.TrimPrefix(f.Path, relPath+"/")
		}
		if dir := path.Dir(rel); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return files, bytes, fmt.Errorf("mlflow: download %s: %w", f.Path, err)
			}
		}
		budget := int64(-1)
		if limits.MaxBytes > 0 {
			budget = limits.MaxBytes - bytes
		}
		n, err := c.downloadTo(ctx, root, artifactURI, f.Path, rel, budget)
		bytes += n
		if err != nil {
			return files, bytes, err
		}
		if f.FileSize > 0 && n != f.FileSize {
			return files, bytes, fmt.Errorf("mlflow: download %s from %s: got %d bytes, the listing says %d", f.Path, artifactURI, n, f.FileSize)
		}
		files++
	}
	return files, bytes, nil
}

// downloadTo writes one artifact file to rel below root; budget < 0 is no
// limit.
func (c *Client) downloadTo(ctx context.Context, root *os.Root, artifactURI, artifactPath, rel string, budget int64) (int64, error) {
	out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, fmt.Errorf("mlflow: download %s: %w", artifactPath, err)
	}
	var w io.Writer = out
	var capped *capWriter
	if budget >= 0 {
		capped = &capWriter{w: out, left: budget}
		w = capped
	}
	n, err := c.DownloadArtifact(ctx, artifactURI, artifactPath, w)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("mlflow: download %s: %w", artifactPath, cerr)
	}
	if capped != nil && capped.over {
		return n, fmt.Errorf("mlflow: download %s from %s: %w", artifactPath, artifactURI, ErrTooLarge)
	}
	return n, err
}

// listTree appends every file below relPath, depth first, checking the
// limits as it goes.
func (c *Client) listTree(ctx context.Context, artifactURI, relPath string, out *[]FileInfo, limits DownloadLimits) error {
	entries, err := c.ListArtifacts(ctx, artifactURI, relPath)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir {
			if err := c.listTree(ctx, artifactURI, e.Path, out, limits); err != nil {
				return err
			}
			continue
		}
		*out = append(*out, e)
		if limits.MaxFiles > 0 && len(*out) > limits.MaxFiles {
			return fmt.Errorf("mlflow: download %s: %w: more than %d files", artifactURI, ErrTooLarge, limits.MaxFiles)
		}
	}
	return nil
}

// capWriter fails a write that would take it over left bytes.
type capWriter struct {
	w    io.Writer
	left int64
	over bool
}

func (c *capWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		c.over = true
		return 0, ErrTooLarge
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	return n, err
}
