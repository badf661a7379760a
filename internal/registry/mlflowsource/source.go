// Package mlflowsource is a registry.Source that follows model versions in an
// MLflow model registry: one or more model URIs of one registered model,
// models:/NAME@ALIAS (an alias: production, staging) or models:/NAME/N (a
// pinned version).
//
// Each followed URI is a slot. A load resolves every slot to a version,
// downloads its artifact directory through the tracking server's artifact
// proxy, checks it against the version's artifact_digest tag
// (model.Digest), and loads it. A slot that cannot be refreshed (MLflow
// down, the alias deleted, a corrupt artifact, a digest mismatch) keeps the
// version it served, and at start falls back to the local cache: the load is
// then partial, and the error is reported (registry.Source). So a broken
// staging version never holds back a production rollback, and a version
// that fails to load never replaces a good one.
//
// Versions are served under the name v<registry version> (v7 for version
// 7): X-Model-Version, metric labels and /models use it; the artifact's own
// model.json version is kept in the origin. The first URI is the primary: it
// takes unpinned traffic when no weights are set, and while it has nothing
// to serve nothing is served (a staging version must never take production's
// traffic by default).
package mlflowsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ml-platform/platform/internal/lifecycle"
	"github.com/ml-platform/platform/internal/mlflow"
	"github.com/ml-platform/platform/internal/model"
	"github.com/ml-platform/platform/internal/registry"
)

// Config says what to follow and where to keep the cache.
type Config struct {
	Client   *mlflow.Client
	URIs     []lifecycle.ModelURI // of one registered model; the first is the primary
	CacheDir string
	Log      *slog.Logger
}

// Source follows model URIs in MLflow.
type Source struct {
	c     *mlflow.Client
	uris  []lifecycle.ModelURI
	cache *cache
	log   *slog.Logger

	mu       sync.Mutex                // Load is serialised by registry.Live; this guards last anyway
	last     map[string]registry.Entry // per slot (URI), what the last Load returned for it
	previous map[string]string         // per slot, the digest it served before its current version
}

// downloadTimeout bounds one artifact download (a stalled transfer would
// otherwise hold the reload for ever).
const downloadTimeout = 2 * time.Minute

// New checks the configuration and opens the cache.
func New(cfg Config) (*Source, error) {
	if len(cfg.URIs) == 0 {
		return nil, errors.New("mlflow source: no model URI to follow")
	}
	seen := map[string]bool{}
	for _, u := range cfg.URIs {
		if u.Model != cfg.URIs[0].Model {
			return nil, fmt.Errorf("mlflow source: %s and %s name different registered models; follow one (its versions are served as v<N>, which would clash)", cfg.URIs[0], u)
		}
		if seen[u.String()] {
			return nil, fmt.Errorf("mlflow source: %s is given twice", u)
		}
		seen[u.String()] = true
		if u.Alias != "" && model.ValidVersion(u.Alias) && strings.HasPrefix(u.Alias, "v") && lifecycle.CheckVersion(u.Alias[1:]) == nil {
			return nil, fmt.Errorf("mlflow source: alias %q would clash with the version names v<N>", u.Alias)
		}
	}
	c, err := openCache(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	return &Source{c: cfg.Client, uris: cfg.URIs, cache: c, log: cfg.Log, last: map[string]registry.Entry{}, previous: map[string]string{}}, nil
}

func (s *Source) String() string {
	names := make([]string, len(s.uris))
	for i, u := range s.uris {
		names[i] = u.String()
	}
	return "mlflow:" + s.c.TrackingURI() + " " + strings.Join(names, ",")
}

// resolved is what one slot points at now.
type resolved struct {
	mv  mlflow.ModelVersion
	err error
}

// resolveAll asks the registry where every slot points, all at once.
func (s *Source) resolveAll(ctx context.Context) []resolved {
	out := make([]resolved, len(s.uris))
	var wg sync.WaitGroup
	for i, u := range s.uris {
		wg.Go(func() {
			var mv mlflow.ModelVersion
			var err error
			if u.Alias != "" {
				mv, err = s.c.GetModelVersionByAlias(ctx, u.Model, u.Alias)
			} else {
				mv, err = s.c.GetModelVersion(ctx, u.Model, u.Version)
			}
			out[i] = resolved{mv, err}
		})
	}
	wg.Wait()
	return out
}

// Fingerprint is where each slot points (version and digest), or why it
// cannot be told; it fails only if no slot could be resolved.
func (s *Source) Fingerprint(ctx context.Context) (string, error) {
	var b strings.Builder
	var errs []error
	for i, r := range s.resolveAll(ctx) {
		fmt.Fprintf(&b, "%s=", s.uris[i])
		switch {
		case r.err == nil:
			fmt.Fprintf(&b, "%s:%s;", r.mv.Version, r.mv.Tags[lifecycle.TagDigest])
		case errors.Is(r.err, mlflow.ErrNotFound):
			b.WriteString("!missing;")
			errs = append(errs, r.err)
		default:
			b.WriteString("!error;")
			errs = append(errs, r.err)
		}
	}
	if len(errs) == len(s.uris) {
		return "", errors.Join(errs...)
	}
	return b.String(), nil
}

// Load refreshes every slot; see the package documentation.
func (s *Source) Load(ctx context.Context) ([]registry.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.resolveAll(ctx)
	slots := make([]*registry.Entry, len(s.uris))
	var errs []error
	for i, u := range s.uris {
		e, err := s.refresh(ctx, u, now[i])
		if err != nil {
			errs = append(errs, err)
		}
		if e != nil {
			slots[i] = e
			if prev, ok := s.last[u.String()]; ok && prev.Origin.Digest != e.Origin.Digest {
				s.previous[u.String()] = prev.Origin.Digest
			}
			s.last[u.String()] = *e
		}
	}
	if slots[0] == nil {
		errs = append(errs, fmt.Errorf("%s, the primary, has no version to serve, so nothing is served", s.uris[0]))
		return nil, errors.Join(errs...)
	}
	entries := s.merge(slots)
	// The cache keeps what is served and what each slot served before, so
	// that a rollback finds its version on disk.
	keep := map[string]bool{}
	for _, e := range entries {
		keep[e.Origin.Digest] = true
	}
	for _, d := range s.previous {
		keep[d] = true
	}
	names := make([]string, len(s.uris))
	for i, u := range s.uris {
		names[i] = u.String()
	}
	if err := s.cache.prune(keep, names); err != nil {
		s.log.Warn("model cache: could not remove unused artifacts", "err", err)
	}
	return entries, errors.Join(errs...)
}

// refresh returns what slot u serves now, and the error that kept it from
// serving where the registry points (nil entry: nothing to serve).
func (s *Source) refresh(ctx context.Context, u lifecycle.ModelURI, r resolved) (*registry.Entry, error) {
	prev, hadPrev := s.last[u.String()]
	if r.err != nil {
		err := fmt.Errorf("%s: %w", u, r.err)
		if hadPrev {
			return withOrigin(prev, func(o *registry.Origin) { o.Stale = "could not be refreshed: " + r.err.Error() }), err
		}
		e, cerr := s.fromCache(u)
		if e == nil {
			return nil, errors.Join(err, cerr)
		}
		s.log.Warn("MLflow could not be asked; serving the cached copy", "uri", u.String(), "version", e.Meta.Version, "err", r.err.Error())
		return e, err
	}
	mv := r.mv
	digest := mv.Tags[lifecycle.TagDigest]
	if hadPrev && prev.Origin.Version == mv.Version && prev.Origin.Digest == digest {
		return withOrigin(prev, func(o *registry.Origin) { o.FromCache, o.Stale = false, "" }), nil
	}
	e, err := s.fetch(ctx, u, mv)
	if err != nil {
		stale := fmt.Sprintf("%s points at version %s, which was refused: %v", u, mv.Version, err)
		err = fmt.Errorf("%s -> version %s refused: %w", u, mv.Version, err)
		if hadPrev {
			return withOrigin(prev, func(o *registry.Origin) { o.Stale = stale }), err
		}
		return nil, err
	}
	rec := record{URI: u.String(), Version: mv.Version, Digest: digest, RunID: mv.RunID, RunMetrics: e.Origin.RunMetrics,
		Source: mv.Source, ArtifactVersion: e.Origin.ArtifactVersion, SavedAt: time.Now().UTC()}
	if err := s.cache.save(rec); err != nil {
		s.log.Warn("model cache: could not record the version; a restart while MLflow is down will not serve it", "uri", u.String(), "err", err)
	}
	return e, nil
}

// withOrigin copies e with a changed copy of its origin.
func withOrigin(e registry.Entry, change func(*registry.Origin)) *registry.Entry {
	o := *e.Origin
	change(&o)
	e.Origin = &o
	return &e
}

// fetch downloads (or finds in the cache), verifies and loads version mv.
func (s *Source) fetch(ctx context.Context, u lifecycle.ModelURI, mv mlflow.ModelVersion) (*registry.Entry, error) {
	if mv.Status != mlflow.VersionReady {
		return nil, fmt.Errorf("its status is %s", mv.Status)
	}
	digest := mv.Tags[lifecycle.TagDigest]
	if !model.ValidDigest(digest) {
		return nil, fmt.Errorf("its %s tag %q is not an artifact digest (register versions with platformctl model register)", lifecycle.TagDigest, digest)
	}
	dctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()
	dir, cached, err := s.cache.artifact(digest, func(tmp string) error {
		_, _, err := s.c.DownloadDir(dctx, mv.Source, "", tmp, lifecycle.DownloadLimits)
		return err
	})
	if err != nil {
		return nil, err
	}
	var metrics map[string]float64
	if mv.RunID != "" {
		if metrics, err = lifecycle.RunMetrics(ctx, s.c, mv.RunID); err != nil {
			return nil, fmt.Errorf("its run's metrics: %w", err)
		}
	}
	v, own, err := load(dir, u.Model, mv.Version)
	if err != nil {
		return nil, err
	}
	s.log.Info("model version fetched", "uri", u.String(), "version", v.Meta.Version, "digest", digest, "from_cache", cached)
	return &registry.Entry{Version: v, Origin: &registry.Origin{
		Registry: s.c.TrackingURI(), Model: u.Model, Version: mv.Version, RunID: mv.RunID, RunMetrics: metrics,
		Source: mv.Source, Digest: digest, ArtifactVersion: own,
	}}, nil
}

// fromCache loads the slot's last recorded version from the cache (nil: no
// usable copy).
func (s *Source) fromCache(u lifecycle.ModelURI) (*registry.Entry, error) {
	rec, ok, err := s.cache.load(u.String())
	if !ok {
		if err == nil {
			err = fmt.Errorf("%s: no cached copy in %s", u, s.cache.dir)
		}
		return nil, err
	}
	dir := s.cache.artifactDir(rec.Digest)
	if err := model.VerifyDigest(dir, rec.Digest); err != nil {
		return nil, fmt.Errorf("%s: the cached copy of version %s: %w", u, rec.Version, err)
	}
	v, _, err := load(dir, u.Model, rec.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: the cached copy of version %s: %w", u, rec.Version, err)
	}
	return &registry.Entry{Version: v, Origin: &registry.Origin{
		Registry: s.c.TrackingURI(), Model: u.Model, Version: rec.Version, RunID: rec.RunID, RunMetrics: rec.RunMetrics,
		Source: rec.Source, Digest: rec.Digest, ArtifactVersion: rec.ArtifactVersion, FromCache: true,
	}}, nil
}

// ServedName is the name registry version n of a model is served under.
func ServedName(version string) string { return "v" + version }

// load loads an artifact directory as registry version version of model:
// served as v<version>, named after the registered model. own is
// model.json's version name.
func load(dir, registered, version string) (v *model.Version, own string, err error) {
	v, err = model.LoadArtifact(dir)
	if err != nil {
		return nil, "", err
	}
	own = v.Meta.Version
	v.Meta.Version = ServedName(version)
	v.Meta.Name = registered
	return v, own, nil
}

// merge makes one entry per registry version, with every alias that points
// at it; the primary slot's version is marked.
func (s *Source) merge(slots []*registry.Entry) []registry.Entry {
	byVersion := map[string]*registry.Entry{}
	var order []string
	for i, e := range slots {
		if e == nil {
			continue
		}
		name := e.Meta.Version
		m, ok := byVersion[name]
		if !ok {
			m = withOrigin(*e, func(o *registry.Origin) { o.Aliases, o.Primary = nil, false })
			byVersion[name] = m
			order = append(order, name)
		} else if e.Origin.Stale != "" && !strings.Contains(m.Origin.Stale, e.Origin.Stale) {
			m.Origin.Stale = strings.TrimPrefix(m.Origin.Stale+"; "+e.Origin.Stale, "; ")
		}
		if a := s.uris[i].Alias; a != "" {
			m.Origin.Aliases = append(m.Origin.Aliases, a)
		}
		if i == 0 {
			m.Origin.Primary = true
		}
	}
	out := make([]registry.Entry, 0, len(order))
	for _, name := range order {
		e := byVersion[name]
		slices.Sort(e.Origin.Aliases)
		out = append(out, *e)
	}
	return out
}
