// Package verify proves the GitOps repository before anything reaches a
// cluster: every Kustomize entry point renders, the rendered objects pass
// structural checks (replicas per environment, resources, probes, non-root,
// pinned images, labels, no secrets in Git, Application paths), and a real
// kube-apiserver accepts every object (see server.go).
package verify

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// ConfigFile is where the repository declares what verify checks.
const ConfigFile = "infrastructure/verify.yaml"

// Config is infrastructure/verify.yaml.
type Config struct {
	// RepoURL is this repository as Argo CD Applications name it; their paths
	// are checked to exist and render.
	RepoURL string `json:"repoURL"`
	// RequiredLabels must be on every object of every environment.
	RequiredLabels []string `json:"requiredLabels"`
	// ExternalNamespaces exist before these manifests are applied (created by
	// an installer, e.g. argocd), so objects may live in them.
	ExternalNamespaces []string `json:"externalNamespaces"`
	// Environments are the overlays, with what each must contain.
	Environments []Environment `json:"environments"`
	// EntryPoints are other kustomizations to render and validate.
	EntryPoints []string `json:"entryPoints"`
	// Files are plain manifests (not kustomizations) to validate, e.g. the
	// root Application that bootstrap applies.
	Files []string `json:"files"`
	// NetworkMatrix is the connectivity matrix (infrastructure/network/
	// connectivity.yaml) checked against the rendered NetworkPolicies in the
	// static stage (network.go); "" skips the check.
	NetworkMatrix string `json:"networkMatrix,omitempty"`
	// PodSecurityExceptions are the namespaces allowed below the Pod Security
	// Standard "restricted", each with its level and reason (podsecurity.go).
	PodSecurityExceptions []PodSecurityException `json:"podSecurityExceptions,omitempty"`
}

// Environment is one overlay and its expectations.
type Environment struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Replicas maps a workload name to its replica count in this environment.
	Replicas map[string]int64 `json:"replicas"`
}

// LoadConfig reads and validates the config; errors name the file and field.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read verify config: %w", err)
	}
	var c Config
	if err := yaml.UnmarshalStrict(bytes.TrimSpace(data), &c); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(c.Environments) == 0 {
		return nil, fmt.Errorf("%s: field \"environments\" must list at least one environment", path)
	}
	seen := map[string]bool{}
	for i, e := range c.Environments {
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
	return &c, nil
}

// Environment returns the named environment.
func (c *Config) Environment(name string) (Environment, error) {
	var names []string
	for _, e := range c.Environments {
		if e.Name == name {
			return e, nil
		}
		names = append(names, e.Name)
	}
	return Environment{}, fmt.Errorf("unknown environment %q (known: %v)", name, names)
}

// Rooted returns the config with every path joined to root, so verify can
// run from anywhere (tests point it at fixture trees).
func (c *Config) Rooted(root string) *Config {
	out := *c
	out.Environments = nil
	for _, e := range c.Environments {
		e.Path = filepath.Join(root, e.Path)
		out.Environments = append(out.Environments, e)
	}
	out.EntryPoints = nil
	for _, p := range c.EntryPoints {
		out.EntryPoints = append(out.EntryPoints, filepath.Join(root, p))
	}
	out.Files = nil
	for _, p := range c.Files {
		out.Files = append(out.Files, filepath.Join(root, p))
	}
	if c.NetworkMatrix != "" {
		out.NetworkMatrix = filepath.Join(root, c.NetworkMatrix)
	}
	return &out
}
