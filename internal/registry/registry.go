// Package registry is where model versions come from and how the serving set
// is swapped without a restart.
//
// A Source lists and loads versions: a directory (Directory, the default) or
// a model registry (internal/registry/mlflowsource), one package per backend
// behind the same small interface. Live holds the current Set behind an
// atomic pointer: a request takes the Set once and uses it to the end, so a
// reload never fails or mixes versions mid-request.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ml-platform/platform/internal/model"
)

// Source loads every model version it knows about.
type Source interface {
	// Load returns the versions to serve. On error the Live keeps what it
	// serves, unless Load returned versions as well: that is a partial load,
	// where each part of the source that failed to refresh returned what it
	// served before (or nothing, if it never loaded). The Live then serves
	// them and reports the error. A directory never does that (one bad
	// artifact fails its whole load); a registry following several aliases
	// does, so that a broken staging version cannot hold back a production
	// rollback.
	Load(ctx context.Context) ([]Entry, error)
	// Fingerprint changes whenever Load would return something different;
	// a watcher polls it to reload only on change.
	Fingerprint(ctx context.Context) (string, error)
	// String names the source in logs.
	String() string
}

// Entry is one version as a source provides it. Its Meta.Version is the name
// it is served under: the X-Model-Version of its answers and its metric
// label.
type Entry struct {
	*model.Version
	// Origin describes a version a model registry provided; nil for a
	// directory.
	Origin *Origin
}

// Origin is where a registry-provided version came from.
type Origin struct {
	Registry string // the registry's address, e.g. an MLflow tracking URI
	Model    string // the registered model's name
	Version  string // the registry's version, e.g. "7"
	// Aliases are the followed aliases that point at this version, sorted.
	Aliases []string
	// Primary marks the version that takes unpinned traffic when no
	// weights are configured (the first followed alias).
	Primary    bool
	RunID      string             // the run that produced it
	RunMetrics map[string]float64 // that run's latest metrics
	Source     string             // the artifact's URI in the registry
	Digest     string             // the artifact digest the registry records (model.Digest)
	// ArtifactVersion is model.json's own version name, which can differ
	// from the name the version is served under.
	ArtifactVersion string
	// FromCache: loaded from the local cache because the registry could
	// not be asked; not confirmed since.
	FromCache bool
	// Stale says why the alias's current target is not what is served ("":
	// it is).
	Stale string
}

// Loaded is a version as served: when this server loaded it.
type Loaded struct {
	Entry
	LoadedAt time.Time
}

// Set is an immutable snapshot of the served versions.
type Set struct {
	byName   map[string]*Loaded
	aliases  map[string]string // alias -> version name
	versions []string          // in VersionOrder
	primary  string            // "" when no entry is Primary
}

var emptySet = &Set{byName: map[string]*Loaded{}}

// Get returns a version by its name, or by the name of a registry alias that
// points at it ("production").
func (s *Set) Get(name string) (*Loaded, bool) {
	if v, ok := s.byName[name]; ok {
		return v, true
	}
	if n, ok := s.aliases[name]; ok {
		return s.byName[n], true
	}
	return nil, false
}

// Versions lists the version names in VersionOrder.
func (s *Set) Versions() []string { return s.versions }

// Aliases maps each followed alias to the version it serves (nil for a
// directory).
func (s *Set) Aliases() map[string]string { return s.aliases }

// Len is the number of versions.
func (s *Set) Len() int { return len(s.versions) }

// Latest is the highest version in VersionOrder, or nil when empty.
func (s *Set) Latest() *Loaded {
	if len(s.versions) == 0 {
		return nil
	}
	return s.byName[s.versions[len(s.versions)-1]]
}

// Default is the version that takes unpinned traffic when no weights are
// configured: the source's primary version if it has one (a registry's first
// alias: production, not whichever version is newest), else Latest.
func (s *Set) Default() *Loaded {
	if s.primary != "" {
		return s.byName[s.primary]
	}
	return s.Latest()
}

// Status is the outcome of the Live's refreshes, for readiness and logs.
type Status struct {
	Source      string
	LastSuccess time.Time // zero: never
	LastError   error     // of the latest attempt; nil if it succeeded
	LastErrorAt time.Time
}

// Live holds the served Set and reloads it from a Source.
type Live struct {
	source Source
	log    *slog.Logger
	now    func() time.Time

	current atomic.Pointer[Set]
	mu      sync.Mutex // serialises reloads and guards print and status
	print   string
	status  Status
	// OnReload, if set, is called after every refresh attempt: every
	// Reload, and every poll of Watch whose fingerprint failed.
	OnReload func(err error)
}

// NewLive loads the source once; it fails if nothing can be loaded. A
// directory uses it: a server without its models should not start.
func NewLive(ctx context.Context, src Source, log *slog.Logger) (*Live, error) {
	l := NewLiveUnloaded(src, log)
	if err := l.Reload(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// NewLiveUnloaded returns a Live that serves nothing until Reload or Watch
// loads the source: a registry that is down at start must not stop the
// server from answering /health and /ready (503) while it retries.
func NewLiveUnloaded(src Source, log *slog.Logger) *Live {
	l := &Live{source: src, log: log, now: time.Now}
	l.status.Source = src.String()
	l.current.Store(emptySet)
	return l
}

// Current returns the served Set. Callers keep it for the whole request.
func (l *Live) Current() *Set { return l.current.Load() }

// Status is the outcome of the latest refreshes.
func (l *Live) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// report records an attempt's outcome; l.mu is held.
func (l *Live) report(err error) {
	now := l.now().UTC()
	if err == nil {
		l.status.LastSuccess, l.status.LastError = now, nil
	} else {
		l.status.LastError, l.status.LastErrorAt = err, now
	}
	if l.OnReload != nil {
		l.OnReload(err)
	}
}

// Reload loads the source and swaps the Set in one step. A version whose
// metadata is unchanged keeps its LoadedAt. On error the old Set stays,
// unless the source made a partial load (see Source.Load): then its versions
// are served and the error is returned too.
func (l *Live) Reload(ctx context.Context) (err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() { l.report(err) }()
	// A source that cannot fingerprint may still load something (a
	// registry's cached versions), so Load runs either way; without a
	// fingerprint the next poll reloads.
	print, printErr := l.source.Fingerprint(ctx)
	entries, loadErr := l.source.Load(ctx)
	if printErr != nil && loadErr == nil {
		print, loadErr = "", fmt.Errorf("fingerprint: %w", printErr)
	}
	if len(entries) == 0 {
		if loadErr == nil {
			loadErr = errors.New("no model versions found")
		}
		return fmt.Errorf("load models from %s: %w", l.source, loadErr)
	}
	next, err := l.build(entries)
	if err != nil {
		return fmt.Errorf("load models from %s: %w", l.source, err)
	}
	l.current.Store(next)
	if loadErr != nil {
		// Not remembered, so the next poll tries the failed part again.
		l.print = ""
		l.log.LogAttrs(ctx, slog.LevelWarn, "models loaded in part; what failed keeps its previous version",
			slog.String("source", l.source.String()), slog.Any("versions", next.versions), slog.String("err", loadErr.Error()))
		return fmt.Errorf("load models from %s: %w", l.source, loadErr)
	}
	l.print = print
	l.log.LogAttrs(ctx, slog.LevelInfo, "models loaded", slog.String("source", l.source.String()),
		slog.Any("versions", next.versions))
	return nil
}

// build makes the next Set from entries, keeping the LoadedAt of versions
// that did not change.
func (l *Live) build(entries []Entry) (*Set, error) {
	old := l.current.Load()
	next := &Set{byName: make(map[string]*Loaded, len(entries))}
	now := l.now().UTC()
	for _, e := range entries {
		name := e.Meta.Version
		if _, dup := next.byName[name]; dup {
			return nil, fmt.Errorf("version %q appears twice", name)
		}
		loadedAt := now
		if prev, ok := old.byName[name]; ok && prev.Meta.Created.Equal(e.Meta.Created) && prev.Dir == e.Dir {
			loadedAt = prev.LoadedAt
		}
		next.byName[name] = &Loaded{Entry: e, LoadedAt: loadedAt}
		next.versions = append(next.versions, name)
		if e.Origin == nil {
			continue
		}
		if e.Origin.Primary {
			if next.primary != "" {
				return nil, fmt.Errorf("versions %q and %q are both primary", next.primary, name)
			}
			next.primary = name
		}
		for _, a := range e.Origin.Aliases {
			if next.aliases == nil {
				next.aliases = map[string]string{}
			}
			if other, dup := next.aliases[a]; dup {
				return nil, fmt.Errorf("alias %q points at both %q and %q", a, other, name)
			}
			next.aliases[a] = name
		}
	}
	for a := range next.aliases {
		if _, clash := next.byName[a]; clash {
			return nil, fmt.Errorf("alias %q is also a version name", a)
		}
	}
	slices.SortFunc(next.versions, VersionOrder)
	return next, nil
}

// Watch polls the source's fingerprint every interval and reloads on change,
// until ctx ends. Errors are logged and reported to OnReload; the old set
// keeps serving. While nothing is loaded it retries sooner, with a backoff
// from 1 s doubling up to interval.
func (l *Live) Watch(ctx context.Context, interval time.Duration) {
	first := min(time.Second, interval)
	backoff := first
	for {
		wait := interval
		empty := l.Current().Len() == 0
		if empty {
			wait = backoff
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if empty {
			backoff = min(2*backoff, interval)
			if err := l.Reload(ctx); err != nil && ctx.Err() == nil {
				if l.Current().Len() == 0 {
					l.log.Warn("no model version loaded yet; not ready, retrying", "source", l.source.String(), "retry_in", backoff.String(), "err", err)
				} else {
					l.log.Error("model reload failed", "source", l.source.String(), "err", err)
				}
			}
			continue
		}
		backoff = first
		print, err := l.source.Fingerprint(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.mu.Lock()
			l.report(fmt.Errorf("fingerprint %s: %w", l.source, err))
			l.mu.Unlock()
			l.log.Error("model watch failed; still serving the previous versions", "source", l.source.String(), "err", err)
			continue
		}
		l.mu.Lock()
		same := print == l.print
		if same {
			// Confirmed: a registry that was unreachable is back and
			// nothing moved. Not a reload, so OnReload is not told.
			l.status.LastSuccess, l.status.LastError = l.now().UTC(), nil
		}
		l.mu.Unlock()
		if same {
			continue
		}
		if err := l.Reload(ctx); err != nil && ctx.Err() == nil {
			l.log.Error("model reload failed; what could not be loaded keeps its previous version", "source", l.source.String(), "err", err)
		}
	}
}
