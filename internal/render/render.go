// Package render builds Kustomize entry points in-process with the kustomize
// API (krusty), the same engine as `kustomize build` and Argo CD, and returns
// the rendered objects.
package render

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one rendered Kubernetes object and the entry point it came from.
type Object struct {
	*unstructured.Unstructured
	EntryPoint string
}

// Ref names an object the way errors and diffs print it: Kind/namespace/name
// (or Kind/name for cluster-scoped objects).
func (o Object) Ref() string {
	return Ref(o.Unstructured)
}

// Ref names an object: Kind/namespace/name, or Kind/name without a namespace.
func Ref(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return u.GetKind() + "/" + ns + "/" + u.GetName()
	}
	return u.GetKind() + "/" + u.GetName()
}

// Build renders the kustomization in dir (relative to the process's working
// directory or absolute). Errors name the entry point; kustomize's own
// messages name the file at fault. A panic inside kustomize is turned into an
// error so bad input never crashes the caller.
func Build(dir string) (objs []Object, err error) {
	return BuildWith(dir, nil)
}

// BuildWith is Build with remote bases resolved locally: upstreams maps a
// remote resource URL, exactly as a kustomization's resources list writes it
// (https://github.com/org/repo//path?ref=vX), to a local directory holding
// that revision (a Go module in the module cache). Argo CD fetches the
// remote; verify and platformctl render the same revision without a
// network. A remote resource not in upstreams fails as kustomize would
// offline, which keeps every remote base declared.
func BuildWith(dir string, upstreams map[string]string) (objs []Object, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("render %s: kustomize failed: %v", dir, p)
		}
	}()
	if _, statErr := os.Stat(dir); statErr != nil {
		return nil, fmt.Errorf("render %s: %w", dir, statErr)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	var fsys filesys.FileSystem = filesys.MakeFsOnDisk()
	if len(upstreams) > 0 {
		fsys = upstreamFS{FileSystem: fsys, upstreams: upstreams}
	}
	resMap, err := k.Run(fsys, abs)
	if err != nil {
		msg := relativize(err.Error(), abs, dir)
		if strings.Contains(msg, "invalid Kustomization") {
			msg = filepath.Join(dir, "kustomization.yaml") + ": " + msg
		}
		return nil, fmt.Errorf("render %s: %s", dir, msg)
	}
	for _, r := range resMap.Resources() {
		// Through JSON, so numbers become int64/float64 as the apimachinery
		// helpers expect (kyaml's maps hold plain ints).
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("render %s: %s: %w", dir, r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("render %s: %s: %w", dir, r.CurId(), err)
		}
		objs = append(objs, Object{Unstructured: u, EntryPoint: dir})
	}
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].Ref() < objs[j].Ref() })
	return objs, nil
}

// upstreamFS rewrites remote resource URLs in kustomization files to the
// local directories that hold them.
type upstreamFS struct {
	filesys.FileSystem
	upstreams map[string]string
}

func (f upstreamFS) ReadFile(path string) ([]byte, error) {
	data, err := f.FileSystem.ReadFile(path)
	if err != nil {
		return data, err
	}
	switch filepath.Base(path) {
	case "kustomization.yaml", "kustomization.yml", "Kustomization":
	default:
		return data, nil
	}
	s := string(data)
	for url, dir := range f.upstreams {
		if !strings.Contains(s, url) {
			continue
		}
		// kustomize refuses absolute bases: the path relative to this
		// kustomization's directory.
		rel, err := filepath.Rel(filepath.Dir(path), dir)
		if err != nil {
			return nil, fmt.Errorf("%s: upstream %s: %w", path, url, err)
		}
		s = strings.ReplaceAll(s, url, rel)
	}
	return []byte(s), nil
}

// relativize shortens absolute paths in kustomize's messages to the path the
// user gave.
func relativize(msg, abs, dir string) string {
	return strings.ReplaceAll(msg, abs, dir)
}
