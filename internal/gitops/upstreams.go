package gitops

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModulesFile pins the upstream modules whose files (CRDs, Kustomize bases,
// chart sources) the repository's checks read; nothing in it is built.
const ModulesFile = "tools/crds/go.mod"

// ModuleVersion returns the version ModulesFile requires of module.
func (r *Repository) ModuleVersion(module string) (string, error) {
	f, err := os.Open(filepath.Join(r.Root, ModulesFile))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "require" {
			fields = fields[1:]
		}
		if len(fields) >= 2 && fields[0] == module && strings.HasPrefix(fields[1], "v") {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", ModulesFile, module)
}

// ModuleDir downloads (or finds in the module cache) module at the version
// ModulesFile pins, checked against its go.sum, and returns its directory.
func (r *Repository) ModuleDir(module string) (string, error) {
	version, err := r.ModuleVersion(module)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = filepath.Join(r.Root, filepath.Dir(ModulesFile))
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	_ = json.Unmarshal(out, &m)
	if err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s (in %s): %v %s %s", module, version, filepath.Dir(ModulesFile), err, m.Error, stderr.String())
	}
	return m.Dir, nil
}

// ResolveUpstreams maps every declared upstream URL to its directory in the
// module cache. The URL's ?ref= must be the module's pinned version: a bump
// of one without the other is an error naming both.
func (r *Repository) ResolveUpstreams() (map[string]string, error) {
	out := map[string]string{}
	for i, u := range r.Upstreams {
		version, err := r.ModuleVersion(u.Module)
		if err != nil {
			return nil, fmt.Errorf("%s: upstreams[%d] (%s): %w", ConfigFile, i, u.URL, err)
		}
		if !strings.HasSuffix(u.URL, "?ref="+version) {
			return nil, fmt.Errorf("%s: upstreams[%d]: %s must end in ?ref=%s, the version %s pins for %s", ConfigFile, i, u.URL, version, ModulesFile, u.Module)
		}
		dir, err := r.ModuleDir(u.Module)
		if err != nil {
			return nil, fmt.Errorf("%s: upstreams[%d]: %w", ConfigFile, i, err)
		}
		local := filepath.Join(dir, filepath.FromSlash(u.Dir))
		if !HasKustomization(local) {
			return nil, fmt.Errorf("%s: upstreams[%d]: %s@%s has no kustomization in %s", ConfigFile, i, u.Module, version, u.Dir)
		}
		out[u.URL] = local
	}
	return out, nil
}
