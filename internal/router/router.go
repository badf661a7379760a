// Package router chooses the model version that serves a request: a version
// pinned by the client, else a weighted split that is sticky per request key.
package router

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/ml-platform/platform/internal/model"
	"github.com/ml-platform/platform/internal/registry"
)

// Weight is one version's share of unpinned traffic.
type Weight struct {
	Version string `json:"version"`
	Weight  int    `json:"weight"`
}

// ParseWeights parses "v1=90,v2=10" (or, with a registry source, alias names:
// "production=90,staging=10"). Weights are relative (they need not sum to
// 100); an empty string means "all traffic to the default version".
func ParseWeights(s string) ([]Weight, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []Weight
	seen := map[string]bool{}
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		name, num, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("traffic %q: want version=weight, got %q", s, part)
		}
		name = strings.TrimSpace(name)
		if !model.ValidVersion(name) {
			return nil, fmt.Errorf("traffic %q: invalid version name %q", s, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("traffic %q: version %q listed twice", s, name)
		}
		seen[name] = true
		w, err := strconv.Atoi(strings.TrimSpace(num))
		if err != nil || w < 0 || w > 1_000_000 {
			return nil, fmt.Errorf("traffic %q: weight of %q must be an integer from 0 to 1000000", s, name)
		}
		total += w
		out = append(out, Weight{Version: name, Weight: w})
	}
	if total == 0 {
		return nil, fmt.Errorf("traffic %q: weights add up to zero", s)
	}
	return out, nil
}

// UnknownVersionError is returned when a client pins a version that is not
// loaded.
type UnknownVersionError struct {
	Version   string
	Available []string
}

func (e *UnknownVersionError) Error() string {
	return fmt.Sprintf("model version %q is not loaded; available versions: %s", e.Version, strings.Join(e.Available, ", "))
}

// Router picks versions. It is immutable and safe for concurrent use.
type Router struct {
	weights []Weight
}

// New returns a router with the configured weights (nil: the set's default
// version takes all, see registry.Set.Default).
func New(weights []Weight) *Router {
	return &Router{weights: weights}
}

// Pick returns the version for a request. pinned, if non-empty, must name a
// loaded version. key, if non-empty, makes the choice deterministic for that
// key (one user always sees one version while the weights stay the same).
func (r *Router) Pick(set *registry.Set, pinned, key string) (*registry.Loaded, error) {
	if pinned != "" {
		v, ok := set.Get(pinned)
		if !ok {
			return nil, &UnknownVersionError{Version: pinned, Available: available(set)}
		}
		return v, nil
	}
	active, total := r.active(set)
	if total == 0 {
		if v := set.Default(); v != nil {
			return v, nil
		}
		return nil, &UnknownVersionError{Available: available(set)}
	}
	var x uint64
	if key != "" {
		h := fnv.New64a()
		h.Write([]byte(key))
		x = h.Sum64() % uint64(total)
	} else {
		x = rand.Uint64N(uint64(total))
	}
	for _, w := range active {
		if x < uint64(w.Weight) {
			v, _ := set.Get(w.Version)
			return v, nil
		}
		x -= uint64(w.Weight)
	}
	panic("unreachable: weights do not add up")
}

// active returns the configured weights of the versions that are loaded.
func (r *Router) active(set *registry.Set) ([]Weight, int) {
	var out []Weight
	total := 0
	for _, w := range r.weights {
		if _, ok := set.Get(w.Version); ok && w.Weight > 0 {
			out = append(out, w)
			total += w.Weight
		}
	}
	return out, total
}

// Split reports the share of unpinned traffic (in percent) each loaded
// version receives now, after dropping configured versions that are not loaded.
func (r *Router) Split(set *registry.Set) map[string]float64 {
	out := make(map[string]float64, set.Len())
	for _, name := range set.Versions() {
		out[name] = 0
	}
	active, total := r.active(set)
	if total == 0 {
		if v := set.Default(); v != nil {
			out[v.Meta.Version] = 100
		}
		return out
	}
	for _, w := range active {
		// A weight may name an alias (production=90,staging=10): the share
		// belongs to the version it points at.
		v, _ := set.Get(w.Version)
		out[v.Meta.Version] += 100 * float64(w.Weight) / float64(total)
	}
	return out
}

// available lists what a request may pin: the version names, then the
// aliases.
func available(set *registry.Set) []string {
	out := slices.Clone(set.Versions())
	return append(out, slices.Sorted(maps.Keys(set.Aliases()))...)
}
