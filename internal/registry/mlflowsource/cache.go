package mlflowsource

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ml-platform/platform/internal/model"
)

// cache is the local copy of what the source served, so that a restart
// while MLflow is down can serve the last good versions:
//
//	DIR/artifacts/<digest hex>/   a verified artifact directory, never changed once there
//	DIR/followed/<key>.json       per followed model URI, the version it last resolved to
//	DIR/tmp/                      downloads in progress (emptied at start)
//
// Artifacts are named by digest, so two aliases on one version share a copy
// and a file that rots on disk is caught by the check every load makes.
type cache struct {
	dir string
}

// record is what a followed URI last resolved to and loaded.
type record struct {
	URI             string             `json:"uri"`
	Version         string             `json:"version"`
	Digest          string             `json:"digest"`
	RunID           string             `json:"run_id"`
	RunMetrics      map[string]float64 `json:"run_metrics"`
	Source          string             `json:"source"`
	ArtifactVersion string             `json:"artifact_version"`
	SavedAt         time.Time          `json:"saved_at"`
}

func openCache(dir string) (*cache, error) {
	if dir == "" {
		return nil, errors.New("no model cache directory (--model-cache-dir): the MLflow source needs a writable directory (an emptyDir in Kubernetes)")
	}
	c := &cache{dir: dir}
	if err := os.RemoveAll(c.path("tmp")); err != nil {
		return nil, fmt.Errorf("model cache %s: %w", dir, err)
	}
	for _, sub := range []string{"artifacts", "followed", "tmp"} {
		if err := os.MkdirAll(c.path(sub), 0o755); err != nil {
			return nil, fmt.Errorf("model cache %s: %w (it must be writable)", dir, err)
		}
	}
	return c, nil
}

func (c *cache) path(elem ...string) string {
	return filepath.Join(append([]string{c.dir}, elem...)...)
}

func (c *cache) artifactDir(digest string) string {
	return c.path("artifacts", strings.TrimPrefix(digest, model.DigestPrefix))
}

// artifact returns the verified directory of digest, fetching it with fetch
// (into an empty directory) if it is not cached or the cached copy no longer
// matches. A fetched copy that does not match is refused and removed.
func (c *cache) artifact(digest string, fetch func(dir string) error) (string, bool, error) {
	dir := c.artifactDir(digest)
	if _, err := os.Stat(dir); err == nil {
		if err := model.VerifyDigest(dir, digest); err == nil {
			return dir, true, nil
		}
		// Rotted or tampered with: fetch it again.
		if err := os.RemoveAll(dir); err != nil {
			return "", false, fmt.Errorf("model cache: remove a damaged copy: %w", err)
		}
	}
	tmp, err := os.MkdirTemp(c.path("tmp"), "download-")
	if err != nil {
		return "", false, fmt.Errorf("model cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := fetch(tmp); err != nil {
		return "", false, err
	}
	if err := model.VerifyDigest(tmp, digest); err != nil {
		return "", false, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", false, fmt.Errorf("model cache: %w", err)
	}
	return dir, false, nil
}

// recordPath names a followed URI's record: the URI hex-encoded, so any
// model or alias name is a safe file name.
func (c *cache) recordPath(uri string) string {
	return c.path("followed", hex.EncodeToString([]byte(uri))+".json")
}

func (c *cache) save(r record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.path("tmp"), "record-")
	if err != nil {
		return fmt.Errorf("model cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("model cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("model cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.recordPath(r.URI)); err != nil {
		return fmt.Errorf("model cache: %w", err)
	}
	return nil
}

// load returns the record of uri; ok is false if there is none.
func (c *cache) load(uri string) (record, bool, error) {
	data, err := os.ReadFile(c.recordPath(uri))
	if errors.Is(err, os.ErrNotExist) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("model cache: %w", err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil || r.URI != uri || !model.ValidDigest(r.Digest) {
		return record{}, false, fmt.Errorf("model cache: %s is damaged (%v)", c.recordPath(uri), err)
	}
	return r, true, nil
}

// prune removes every cached artifact no record and no served version
// (keep: digests) refers to.
func (c *cache) prune(keep map[string]bool, uris []string) error {
	for _, uri := range uris {
		if r, ok, _ := c.load(uri); ok {
			keep[r.Digest] = true
		}
	}
	entries, err := os.ReadDir(c.path("artifacts"))
	if err != nil {
		return fmt.Errorf("model cache: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !keep[model.DigestPrefix+e.Name()] {
			errs = append(errs, os.RemoveAll(c.path("artifacts", e.Name())))
		}
	}
	return errors.Join(errs...)
}
