// Package bootstrap produces the root Argo CD Application (the app of apps)
// for any fork and revision of this repository, and applies it to a cluster.
//
// Child Applications and AppProjects in Git name the canonical repository.
// The root Application carries Kustomize patches, which Argo CD applies when
// it renders the children, so a fork's cluster syncs from the fork without
// editing a file: children labelled ml-platform.io/source=this-repo get the
// fork's URL and revision, and each AppProject's first source repository
// (the canonical one, by convention) becomes the fork.
package bootstrap

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/gitops"
)

// RootApplication reads the committed root Application and points it, and
// through patches its children, at repo and revision.
func RootApplication(rootFile, repo, revision string) (*unstructured.Unstructured, error) {
	if err := validRepo(repo); err != nil {
		return nil, err
	}
	if strings.TrimSpace(revision) == "" {
		return nil, fmt.Errorf("--revision is required (a branch, tag or commit)")
	}
	objs, err := gitops.ReadManifests(rootFile)
	if err != nil {
		return nil, err
	}
	var app *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Application" {
			if app != nil {
				return nil, fmt.Errorf("%s: more than one Application; the root file holds exactly one", rootFile)
			}
			app = o.DeepCopy()
		}
	}
	if app == nil {
		return nil, fmt.Errorf("%s: no Application found", rootFile)
	}
	if _, found, _ := unstructured.NestedString(app.Object, "spec", "source", "path"); !found {
		return nil, fmt.Errorf("%s: field spec.source.path is missing", rootFile)
	}
	set := func(v any, path ...string) {
		_ = unstructured.SetNestedField(app.Object, v, path...)
	}
	set(repo, "spec", "source", "repoURL")
	set(revision, "spec", "source", "targetRevision")
	children := fmt.Sprintf("- op: replace\n  path: /spec/source/repoURL\n  value: %q\n- op: replace\n  path: /spec/source/targetRevision\n  value: %q\n", repo, revision)
	projects := fmt.Sprintf("- op: replace\n  path: /spec/sourceRepos/0\n  value: %q\n", repo)
	set([]any{
		map[string]any{
			"target": map[string]any{"kind": "Application", "labelSelector": gitops.ForkLabel + "=this-repo"},
			"patch":  children,
		},
		map[string]any{
			"target": map[string]any{"kind": "AppProject"},
			"patch":  projects,
		},
	}, "spec", "source", "kustomize", "patches")
	return app, nil
}

func validRepo(repo string) error {
	if repo == "" {
		return fmt.Errorf("--repo is required (the Git URL Argo CD clones)")
	}
	if strings.HasPrefix(repo, "git@") {
		return nil // scp-like SSH syntax
	}
	u, err := url.Parse(repo)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "ssh" && u.Scheme != "http") {
		return fmt.Errorf("--repo %q: want an https://, ssh:// or git@host:path Git URL", repo)
	}
	return nil
}

// YAML renders the Application for printing.
func YAML(app *unstructured.Unstructured) ([]byte, error) {
	return yaml.Marshal(app.Object)
}

// Apply server-side applies the Application with the cluster in kubeconfig.
func Apply(ctx context.Context, kubeconfig string, app *unstructured.Unstructured) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cl, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	if err := cl.Apply(ctx, client.ApplyConfigurationFromUnstructured(app), client.FieldOwner("platformctl"), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s/%s: %w", app.GetNamespace(), app.GetName(), err)
	}
	return nil
}
