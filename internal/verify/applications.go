package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ml-platform/platform/internal/gitops"
)

// checkApplications: every source of every Application that names this
// repository points at a path that exists, renders, and is declared in
// platform.yaml (an environment or an entry point), so that every check of
// verify has seen what Argo CD will sync. An Application synced from this
// repository carries the fork label, so bootstrap can point it at a fork;
// every AppProject lists this repository first, which bootstrap replaces.
func checkApplications(_ context.Context, in *Inputs) ([]Finding, string, error) {
	repo := in.Repo
	declared := map[string]bool{}
	for _, e := range repo.Environments {
		declared[filepath.Clean(e.Path)] = true
	}
	for _, p := range repo.EntryPoints {
		declared[filepath.Clean(p)] = true
	}
	var fs []Finding
	apps, sources := 0, 0
	for _, where := range in.Rendered.Order {
		for _, o := range in.Rendered.Objects[where] {
			report := func(format string, args ...any) {
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(format, args...)})
			}
			if gitops.IsArgo(o.Unstructured, "AppProject") {
				if repos, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "sourceRepos"); len(repos) == 0 || repos[0] != repo.RepoURL {
					report("spec.sourceRepos[0] must be %s: platformctl bootstrap replaces it with a fork's URL", repo.RepoURL)
				}
				continue
			}
			if !gitops.IsArgo(o.Unstructured, "Application") {
				continue
			}
			apps++
			ours := gitops.SourcesFrom(o.Unstructured, repo.RepoURL)
			for _, s := range ours {
				sources++
				dir := filepath.Join(repo.Root, s.Path)
				if _, err := os.Stat(dir); err != nil {
					report("%s.path %q does not exist in this repository", s.Field, s.Path)
					continue
				}
				if !gitops.HasKustomization(dir) {
					continue
				}
				if _, err := in.Renderer.Build(dir); err != nil {
					report("%s.path %q does not render: %v", s.Field, s.Path, err)
					continue
				}
				if !declared[filepath.Clean(dir)] {
					report("%s.path %q is not declared in %s (environments or entryPoints), so verify would not check what it syncs", s.Field, s.Path, gitops.ConfigFile)
				}
			}
			// The root Application is a file bootstrap rewrites itself; its
			// children are re-pointed through the fork label.
			if len(ours) > 0 && !slices.Contains(repo.Files, where) && o.GetLabels()[gitops.ForkLabel] != "this-repo" {
				report("label %s=this-repo is missing: bootstrap could not point this Application at a fork", gitops.ForkLabel)
			}
			if slices.ContainsFunc(ours, func(s gitops.Source) bool { return s.Field != "spec.source" }) {
				report("spec.sources names this repository: bootstrap re-points spec.source only; use a single source")
			}
		}
	}
	return fs, fmt.Sprintf("%s, %s from this repository", plural(apps, "Application", "Applications"), plural(sources, "source", "sources")), nil
}
