package lifecycle

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/ml-platform/platform/internal/model"
	"github.com/ml-platform/platform/internal/registry"
)

// SeedRequest says what a fresh registry starts with: every artifact
// directory under ModelsDir, and, for an alias that points nowhere yet, the
// artifact (by its own version name, e.g. v2) it should point at.
type SeedRequest struct {
	ModelsDir string
	// Aliases maps an alias to an artifact version name found in ModelsDir.
	Aliases  map[string]string
	Revision Revision
	Actor    string
}

// SeedResult is what Seed did.
type SeedResult struct {
	Registered []Registered      // one per artifact, in ModelsDir's order
	Promoted   []Move            // aliases Seed set
	Kept       map[string]string // aliases already set: alias -> registry version, untouched
}

// Seed registers every artifact directory of ModelsDir (an artifact already
// registered is found by its digest, not registered again) and sets each
// alias of Aliases that is not set yet, recorded as a move like any other.
// An alias that already points somewhere is left alone: Seed never undoes a
// promotion, so running it again (every sync of a cluster's seed Job) changes
// nothing.
func (r *Registry) Seed(ctx context.Context, req SeedRequest) (SeedResult, error) {
	res := SeedResult{Kept: map[string]string{}}
	for alias := range req.Aliases {
		if err := CheckAlias(alias); err != nil {
			return res, err
		}
	}
	entries, err := os.ReadDir(req.ModelsDir)
	if err != nil {
		return res, fmt.Errorf("seed: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(req.ModelsDir, e.Name(), model.MetadataFile)); err == nil {
				dirs = append(dirs, filepath.Join(req.ModelsDir, e.Name()))
			}
		}
	}
	if len(dirs) == 0 {
		return res, fmt.Errorf("seed: no artifact directory (with a %s) in %s", model.MetadataFile, req.ModelsDir)
	}
	// Registered in the artifacts' own version order (v1 before v2 before
	// v10), so a fresh registry numbers them alike.
	slices.SortFunc(dirs, func(a, b string) int { return registry.VersionOrder(filepath.Base(a), filepath.Base(b)) })
	byArtifact := map[string]string{} // artifact version name -> registry version
	for _, dir := range dirs {
		a, err := ReadArtifact(dir)
		if err != nil {
			return res, fmt.Errorf("seed: %w", err)
		}
		reg, err := r.Register(ctx, RegisterRequest{Artifact: a, Revision: req.Revision, Experiment: r.model})
		if err != nil {
			return res, fmt.Errorf("seed: %w", err)
		}
		res.Registered = append(res.Registered, reg)
		byArtifact[a.Meta.Version] = reg.Version.Version
	}
	aliases := slices.Sorted(maps.Keys(req.Aliases))
	for _, alias := range aliases {
		artifact := req.Aliases[alias]
		version, ok := byArtifact[artifact]
		if !ok {
			return res, fmt.Errorf("seed: alias %s=%s: no artifact %s in %s", alias, artifact, artifact, req.ModelsDir)
		}
		current, err := r.aliasVersion(ctx, alias)
		if err != nil {
			return res, fmt.Errorf("seed: %w", err)
		}
		if current != "" {
			res.Kept[alias] = current
			continue
		}
		m, err := r.Promote(ctx, version, MoveRequest{Alias: alias, Actor: req.Actor, Reason: "seed: the registry's first " + alias + " version, " + artifact + " of " + req.ModelsDir})
		if err != nil {
			return res, fmt.Errorf("seed: %w", err)
		}
		res.Promoted = append(res.Promoted, m)
	}
	return res, nil
}
