package gitops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ml-platform/platform/internal/render"
)

// ReadManifests parses a multi-document YAML file. Errors name the file and,
// where the parser knows it, the line.
func ReadManifests(path string) ([]render.Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []render.Object
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("%s: a document has no apiVersion or kind", path)
		}
		out = append(out, render.Object{Unstructured: u, EntryPoint: path})
	}
}

// HasKustomization reports whether dir holds a kustomization file.
func HasKustomization(dir string) bool {
	for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// Renderer builds kustomizations, each directory once: a run that renders an
// entry point and later meets it again as an Application's path gets the
// same objects (the callers must not modify them) and the same error.
type Renderer struct {
	mu    sync.Mutex
	cache map[string]rendered
	// Builds counts the kustomize builds actually run.
	Builds int
	// Upstreams resolves remote bases (Repository.ResolveUpstreams).
	Upstreams map[string]string
}

type rendered struct {
	objs []render.Object
	err  error
}

// Build renders dir (see render.Build), or returns the earlier result.
func (r *Renderer) Build(dir string) ([]render.Object, error) {
	return r.cached("kustomize:", dir, func() ([]render.Object, error) {
		r.Builds++
		return render.BuildWith(dir, r.Upstreams)
	})
}

// Read parses a plain manifest file like ReadManifests, cached like Build.
func (r *Renderer) Read(path string) ([]render.Object, error) {
	return r.cached("file:", path, func() ([]render.Object, error) { return ReadManifests(path) })
}

func (r *Renderer) cached(kind, path string, load func() ([]render.Object, error)) ([]render.Object, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	key := kind + abs
	r.mu.Lock()
	defer r.mu.Unlock()
	if res, ok := r.cache[key]; ok {
		return res.objs, res.err
	}
	if r.cache == nil {
		r.cache = map[string]rendered{}
	}
	objs, err := load()
	r.cache[key] = rendered{objs, err}
	return objs, err
}

// IsArgo reports whether u is an Argo CD object of the given kind
// (Application, AppProject).
func IsArgo(u *unstructured.Unstructured, kind string) bool {
	return u.GetKind() == kind && strings.HasPrefix(u.GetAPIVersion(), "argoproj.io/")
}
