package gitops

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Source is one source of an Argo CD Application: spec.source, or one entry
// of spec.sources.
type Source struct {
	// Field is where it is in the Application: "spec.source" or
	// "spec.sources[i]", for messages.
	Field          string
	RepoURL        string
	Path           string
	TargetRevision string
	Chart          string
	// Object is the source itself, for fields this type does not name
	// (helm values, kustomize patches).
	Object map[string]any
}

// Sources returns every source of an Application, single or multiple. It is
// the one reader of Application sources.
func Sources(app *unstructured.Unstructured) []Source {
	var out []Source
	add := func(field string, m map[string]any) {
		s := Source{Field: field, Object: m}
		s.RepoURL, _, _ = unstructured.NestedString(m, "repoURL")
		s.Path, _, _ = unstructured.NestedString(m, "path")
		s.TargetRevision, _, _ = unstructured.NestedString(m, "targetRevision")
		s.Chart, _, _ = unstructured.NestedString(m, "chart")
		out = append(out, s)
	}
	if m, found, _ := unstructured.NestedMap(app.Object, "spec", "source"); found {
		add("spec.source", m)
	}
	if list, found, _ := unstructured.NestedSlice(app.Object, "spec", "sources"); found {
		for i, item := range list {
			if m, ok := item.(map[string]any); ok {
				add(fmt.Sprintf("spec.sources[%d]", i), m)
			}
		}
	}
	return out
}

// SourcesFrom returns the sources of app that sync a path of the repository
// at repoURL.
func SourcesFrom(app *unstructured.Unstructured, repoURL string) []Source {
	var out []Source
	for _, s := range Sources(app) {
		if s.RepoURL == repoURL && s.Path != "" {
			out = append(out, s)
		}
	}
	return out
}
