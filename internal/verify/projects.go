package verify

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
)

// clusterScoped lists the cluster-scoped kinds these manifests use (group/kind);
// a rendered object of any other kind is namespaced. Argo CD decides scope
// from the API server; the static stage has none, so the list is explicit,
// and an unlisted cluster-scoped kind would be judged as namespaced (its
// server-side validation then still runs).
var clusterScoped = map[string]bool{
	"/Namespace":                                                    true,
	"/PersistentVolume":                                             true,
	"rbac.authorization.k8s.io/ClusterRole":                         true,
	"rbac.authorization.k8s.io/ClusterRoleBinding":                  true,
	"apiextensions.k8s.io/CustomResourceDefinition":                 true,
	"admissionregistration.k8s.io/ValidatingWebhookConfiguration":   true,
	"admissionregistration.k8s.io/MutatingWebhookConfiguration":     true,
	"admissionregistration.k8s.io/ValidatingAdmissionPolicy":        true,
	"admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding": true,
	"scheduling.k8s.io/PriorityClass":                               true,
	"storage.k8s.io/StorageClass":                                   true,
	"policies.kyverno.io/ValidatingPolicy":                          true,
	"external-secrets.io/ClusterSecretStore":                        true,
	"external-secrets.io/ClusterExternalSecret":                     true,
	"apiregistration.k8s.io/APIService":                             true,
	"gateway.networking.k8s.io/GatewayClass":                        true,
}

// checkProjects checks every Application that syncs a path of this
// repository against its AppProject, as Argo CD will at sync time: the
// project exists and allows the source repository, and every object the path
// renders is of a kind the project allows (cluster- or namespace-scoped
// whitelists and blacklists, with name globs) in a namespace among its
// destinations. A refusal found here would otherwise surface only in a
// cluster, as a sync error.
func checkProjects(_ context.Context, in *Inputs) ([]Finding, string, error) {
	fs, n := Projects(in.Repo, in.Renderer, in.Rendered)
	return fs, plural(n, "object", "objects") + " checked against their Applications' projects", nil
}

// Projects is checkProjects; it returns the findings and how many synced
// objects it checked.
func Projects(repo *gitops.Repository, rr *gitops.Renderer, r *Rendered) ([]Finding, int) {
	projects := map[string]*unstructured.Unstructured{}
	var apps []render.Object
	for _, o := range r.All() {
		switch {
		case gitops.IsArgo(o.Unstructured, "AppProject"):
			projects[o.GetName()] = o.Unstructured
		case gitops.IsArgo(o.Unstructured, "Application"):
			apps = append(apps, o)
		}
	}
	var fs []Finding
	checked := 0
	for _, app := range apps {
		for _, src := range gitops.SourcesFrom(app.Unstructured, repo.RepoURL) {
			dir := filepath.Join(repo.Root, src.Path)
			if !gitops.HasKustomization(dir) {
				continue
			}
			report := func(obj, format string, args ...any) {
				fs = append(fs, Finding{Where: src.Path, Object: obj, Message: fmt.Sprintf("Application %s: ", app.GetName()) + fmt.Sprintf(format, args...)})
			}
			projName, _, _ := unstructured.NestedString(app.Object, "spec", "project")
			proj, ok := projects[projName]
			if !ok {
				report("", "its project %q is not among the rendered AppProjects", projName)
				continue
			}
			if repos, _, _ := unstructured.NestedStringSlice(proj.Object, "spec", "sourceRepos"); !slices.Contains(repos, src.RepoURL) && !slices.Contains(repos, "*") {
				report("", "project %s does not allow source repository %s", projName, src.RepoURL)
			}
			objs, err := rr.Build(dir)
			if err != nil {
				continue // checkApplications reports it
			}
			destNS, _, _ := unstructured.NestedString(app.Object, "spec", "destination", "namespace")
			for _, o := range objs {
				checked++
				gk := o.GroupVersionKind().Group + "/" + o.GetKind()
				if clusterScoped[gk] {
					if !listed(proj, "clusterResourceWhitelist", o) || listed(proj, "clusterResourceBlacklist", o) {
						report(o.Ref(), "project %s does not allow cluster-scoped %s %q: add it to spec.clusterResourceWhitelist of AppProject %s", projName, gk, o.GetName(), projName)
					}
					continue
				}
				ns := o.GetNamespace()
				if ns == "" {
					ns = destNS
				}
				if !destinationAllowed(proj, ns) {
					report(o.Ref(), "project %s has no destination for namespace %q", projName, ns)
				}
				if _, restricted, _ := unstructured.NestedSlice(proj.Object, "spec", "namespaceResourceWhitelist"); restricted && !listed(proj, "namespaceResourceWhitelist", o) {
					report(o.Ref(), "project %s does not allow %s in namespaces: add it to spec.namespaceResourceWhitelist of AppProject %s", projName, gk, projName)
				}
				if listed(proj, "namespaceResourceBlacklist", o) {
					report(o.Ref(), "project %s blacklists %s", projName, gk)
				}
			}
		}
	}
	return fs, checked
}

// listed reports whether o matches an entry (group, kind, optional name; each
// a glob) of the project's list field.
func listed(proj *unstructured.Unstructured, field string, o render.Object) bool {
	entries, _, _ := unstructured.NestedSlice(proj.Object, "spec", field)
	for _, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		group, _ := m["group"].(string)
		kind, _ := m["kind"].(string)
		name, _ := m["name"].(string)
		if glob(group, o.GroupVersionKind().Group) && glob(kind, o.GetKind()) && (name == "" || glob(name, o.GetName())) {
			return true
		}
	}
	return false
}

func destinationAllowed(proj *unstructured.Unstructured, ns string) bool {
	dests, _, _ := unstructured.NestedSlice(proj.Object, "spec", "destinations")
	for _, d := range dests {
		m, ok := d.(map[string]any)
		if !ok {
			continue
		}
		if pattern, _ := m["namespace"].(string); glob(pattern, ns) {
			return true
		}
	}
	return false
}

func glob(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}
