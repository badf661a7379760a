// Package gitops describes this GitOps repository as the rest of platformctl
// sees it: what infrastructure/platform.yaml declares (the environments and
// their overlays, the other entry points Argo CD syncs, the policy bundle,
// the connectivity matrix), how to read plain manifests and Argo CD
// Applications' sources, and a render cache so that each entry point is
// built once per run. verify checks the repository against it; diff,
// bootstrap and the delivery commands find environments through it.
package gitops

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"sigs.k8s.io/yaml"
)

// ConfigFile is where the repository declares itself, relative to its root.
const ConfigFile = "infrastructure/platform.yaml"

// RootFile is the committed root Application (the app of apps) that
// `platformctl bootstrap` applies.
const RootFile = "infrastructure/argocd/root.yaml"

// ForkLabel marks Applications whose source is this repository; the root
// Application that platformctl bootstrap writes re-points them at a fork.
const ForkLabel = "ml-platform.io/source"

// Repository is infrastructure/platform.yaml, with every path joined to the
// repository root it was loaded from.
type Repository struct {
	// Root is the repository root the paths below are joined to.
	Root string `json:"-"`
	// RepoURL is this repository as Argo CD Applications name it.
	RepoURL string `json:"repoURL"`
	// ExternalNamespaces exist before these manifests are applied (created by
	// an installer or an Application's CreateNamespace), so objects may live
	// in them.
	ExternalNamespaces []string `json:"externalNamespaces"`
	// Environments are the overlays, with what each must contain.
	Environments []Environment `json:"environments"`
	// EntryPoints are the other kustomizations Argo CD syncs.
	EntryPoints []string `json:"entryPoints"`
	// Files are plain manifests (not kustomizations), e.g. the root
	// Application that bootstrap applies.
	Files []string `json:"files"`
	// Policies is the Kyverno policy bundle as the kyverno-policies
	// Application syncs it (both modes and their PolicyExceptions): the one
	// source of the workload rules every rendered object must pass.
	Policies string `json:"policies"`
	// NetworkMatrix is the connectivity matrix checked against the rendered
	// NetworkPolicies; "" skips the check.
	NetworkMatrix string `json:"networkMatrix,omitempty"`
	// Upstreams are the remote Kustomize bases this repository's
	// kustomizations name (Argo CD's and metrics-server's own manifests),
	// each resolved offline to a Go module pinned in tools/crds/go.mod at the
	// same revision, so verify renders exactly what Argo CD will fetch.
	Upstreams []Upstream `json:"upstreams,omitempty"`
	// Bootstrap is the kustomization installed by hand before Argo CD
	// exists (Argo CD itself, then managed by the argocd Application): the
	// CRDs it renders exist before the root's first sync.
	Bootstrap string `json:"bootstrap,omitempty"`
	// Secrets are the secret store's entries on a local cluster, which
	// `platformctl bootstrap --secrets` generates: every remote key an
	// ExternalSecret reads must be one of them.
	Secrets []StoreSecret `json:"secrets,omitempty"`
	// RuntimeSecrets are Secrets a controller creates at run time (not
	// rendered anywhere), which pods may read.
	RuntimeSecrets []RuntimeSecret `json:"runtimeSecrets,omitempty"`
	// PlatformPriorityClass is the PriorityClass of the platform's own
	// components; no environment's PriorityClass may reach its value.
	PlatformPriorityClass string `json:"platformPriorityClass,omitempty"`
	// Images are the images this repository's release pipeline publishes.
	Images []PublishedImage `json:"images,omitempty"`
	// PodSecurityExceptions are the namespaces allowed below the Pod Security
	// Standard "restricted", each with its level and reason.
	PodSecurityExceptions []PodSecurityException `json:"podSecurityExceptions,omitempty"`
}

// Environment is one overlay and its expectations.
type Environment struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Replicas maps a workload name to its replica count in this environment.
	Replicas map[string]int64 `json:"replicas"`
}

// PodSecurityException lets one namespace run below the "restricted" Pod
// Security Standard. Its Namespace object, if this repository declares one,
// must enforce Level, and the pod templates rendered into it are evaluated
// at Level instead of restricted. Reason is required: an exception nobody can
// explain is a finding.
type PodSecurityException struct {
	Namespace string `json:"namespace"`
	Level     string `json:"level"` // baseline or privileged
	Reason    string `json:"reason"`
}

// Upstream is one remote Kustomize base and the pinned Go module that holds
// the same files.
type Upstream struct {
	// URL exactly as kustomizations write it, ending in ?ref=<version>.
	URL string `json:"url"`
	// Module is the Go module path; its version is tools/crds/go.mod's.
	Module string `json:"module"`
	// Dir is the base's directory inside the module.
	Dir string `json:"dir"`
}

// StoreSecret is one Secret of the local secret store and how bootstrap
// generates each key.
type StoreSecret struct {
	Name string `json:"name"`
	// Keys maps each key to its generator: "literal:<value>" (that value),
	// "password" (24 random bytes, URL-safe base64: safe in a URI too),
	// "fernet" (a Fernet key: 32 random bytes, URL-safe base64 with padding),
	// "bcrypt:<key>" (the bcrypt hash of another key's
	// value), "mtime" (the time of generation, RFC 3339).
	Keys map[string]string `json:"keys"`
	// Consumers say who reads it, for messages and docs.
	Why string `json:"why,omitempty"`
}

// RuntimeSecret is a Secret created by a running component, and which.
type RuntimeSecret struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Producer  string `json:"producer"`
}

// PublishedImage is an image the release workflow builds and pushes: tags
// are sha-<commit> for commits on main, or the release tag vX.Y.Z.
type PublishedImage struct {
	Name     string `json:"name"`
	Workflow string `json:"workflow"`
}

// Load reads root/ConfigFile.
func Load(root string) (*Repository, error) {
	return LoadFile(root, filepath.Join(root, ConfigFile))
}

// LoadFile reads the declaration at path (tests point it at fixture trees)
// and joins its paths to root. Errors name the file and the field.
func LoadFile(root, path string) (*Repository, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read repository declaration: %w", err)
	}
	var r Repository
	if err := yaml.UnmarshalStrict(bytes.TrimSpace(data), &r); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(r.Environments) == 0 {
		return nil, fmt.Errorf("%s: field \"environments\" must list at least one environment", path)
	}
	seen := map[string]bool{}
	for i, e := range r.Environments {
		switch {
		case e.Name == "":
			return nil, fmt.Errorf("%s: environments[%d].name is required", path, i)
		case e.Path == "":
			return nil, fmt.Errorf("%s: environments[%d].path is required", path, i)
		case seen[e.Name]:
			return nil, fmt.Errorf("%s: environments[%d].name %q is listed twice", path, i, e.Name)
		}
		seen[e.Name] = true
	}
	// An entry point listed twice (or also an environment's path) would be
	// rendered, judged and reported twice.
	paths := map[string]string{}
	for i, e := range r.Environments {
		paths[filepath.Clean(e.Path)] = fmt.Sprintf("environments[%d].path", i)
	}
	for i, p := range r.EntryPoints {
		if first, dup := paths[filepath.Clean(p)]; dup {
			return nil, fmt.Errorf("%s: entryPoints[%d] %q is listed already (%s)", path, i, p, first)
		}
		paths[filepath.Clean(p)] = fmt.Sprintf("entryPoints[%d]", i)
	}
	r.Root = root
	join := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	for i := range r.Environments {
		r.Environments[i].Path = join(r.Environments[i].Path)
	}
	for i := range r.EntryPoints {
		r.EntryPoints[i] = join(r.EntryPoints[i])
	}
	for i := range r.Files {
		r.Files[i] = join(r.Files[i])
	}
	r.Bootstrap = join(r.Bootstrap)
	for i, u := range r.Upstreams {
		if u.URL == "" || u.Module == "" || u.Dir == "" {
			return nil, fmt.Errorf("%s: upstreams[%d]: url, module and dir are required", path, i)
		}
	}
	for i, s := range r.Secrets {
		if s.Name == "" || len(s.Keys) == 0 {
			return nil, fmt.Errorf("%s: secrets[%d]: name and keys are required", path, i)
		}
	}
	r.Policies = join(r.Policies)
	r.NetworkMatrix = join(r.NetworkMatrix)
	return &r, nil
}

// Environment returns the named environment.
func (r *Repository) Environment(name string) (Environment, error) {
	i := slices.IndexFunc(r.Environments, func(e Environment) bool { return e.Name == name })
	if i < 0 {
		return Environment{}, fmt.Errorf("unknown environment %q (known: %v)", name, r.EnvironmentNames())
	}
	return r.Environments[i], nil
}

// EnvironmentNames lists the environments in declaration order.
func (r *Repository) EnvironmentNames() []string {
	var names []string
	for _, e := range r.Environments {
		names = append(names, e.Name)
	}
	return names
}

// Rel makes a path under Root relative to it, for messages; other paths are
// returned as they are.
func (r *Repository) Rel(p string) string {
	if rel, err := filepath.Rel(r.Root, p); err == nil && !filepath.IsAbs(rel) && rel != "" && rel[0] != '.' {
		return rel
	}
	return p
}
