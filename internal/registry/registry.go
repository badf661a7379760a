// Package registry is where model versions come from and how the serving set
// is swapped without a restart.
//
// A Source lists and loads versions (a directory today, MLflow later: one
// package per backend behind the same small interface). Live holds the
// current Set behind an atomic pointer: a request takes the Set once and uses
// it to the end, so a reload never fails or mixes versions mid-request.
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
	// Load returns the versions, sorted by version name. It fails rather
	// than return a partial set, so a bad artifact never replaces good ones.
	Load(ctx context.Context) ([]*model.Version, error)
	// Fingerprint changes whenever Load would return something different;
	// a watcher polls it to reload only on change.
	Fingerprint(ctx context.Context) (string, error)
	// String names the source in logs.
	String() string
}

// Loaded is a version as served: when this server loaded it.
type Loaded struct {
	*model.Version
	LoadedAt time.Time
}

// Set is an immutable snapshot of the served versions.
type Set struct {
	byName   map[string]*Loaded
	versions []string // sorted
}

// Get returns a version by name.
func (s *Set) Get(name string) (*Loaded, bool) {
	v, ok := s.byName[name]
	return v, ok
}

// Versions lists the version names in order.
func (s *Set) Versions() []string { return s.versions }

// Len is the number of versions.
func (s *Set) Len() int { return len(s.versions) }

// Latest is the highest version in the set's order, or nil when empty.
func (s *Set) Latest() *Loaded {
	if len(s.versions) == 0 {
		return nil
	}
	return s.byName[s.versions[len(s.versions)-1]]
}

// Live holds the served Set and reloads it from a Source.
type Live struct {
	source Source
	log    *slog.Logger
	now    func() time.Time

	current atomic.Pointer[Set]
	mu      sync.Mutex // serialises reloads
	print   string
	// OnReload, if set, is called after every reload attempt.
	OnReload func(err error)
}

// NewLive loads the source once; it fails if nothing can be loaded.
func NewLive(ctx context.Context, src Source, log *slog.Logger) (*Live, error) {
	l := &Live{source: src, log: log, now: time.Now}
	l.current.Store(&Set{byName: map[string]*Loaded{}})
	if err := l.Reload(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Current returns the served Set. Callers keep it for the whole request.
func (l *Live) Current() *Set { return l.current.Load() }

// Reload loads the source and swaps the Set in one step. A version whose
// metadata is unchanged keeps its LoadedAt. On error the old Set stays.
func (l *Live) Reload(ctx context.Context) (err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() {
		if l.OnReload != nil {
			l.OnReload(err)
		}
	}()
	print, err := l.source.Fingerprint(ctx)
	if err != nil {
		return fmt.Errorf("fingerprint %s: %w", l.source, err)
	}
	versions, err := l.source.Load(ctx)
	if err != nil {
		return fmt.Errorf("load models from %s: %w", l.source, err)
	}
	if len(versions) == 0 {
		return fmt.Errorf("load models from %s: no model versions found", l.source)
	}
	old := l.current.Load()
	next := &Set{byName: make(map[string]*Loaded, len(versions))}
	now := l.now().UTC()
	for _, v := range versions {
		name := v.Meta.Version
		if _, dup := next.byName[name]; dup {
			return fmt.Errorf("load models from %s: version %q appears twice", l.source, name)
		}
		loadedAt := now
		if prev, ok := old.byName[name]; ok && prev.Meta.Created.Equal(v.Meta.Created) && prev.Dir == v.Dir {
			loadedAt = prev.LoadedAt
		}
		next.byName[name] = &Loaded{Version: v, LoadedAt: loadedAt}
		next.versions = append(next.versions, name)
	}
	slices.Sort(next.versions)
	l.current.Store(next)
	l.print = print
	l.log.LogAttrs(ctx, slog.LevelInfo, "models loaded", slog.String("source", l.source.String()),
		slog.Any("versions", next.versions))
	return nil
}

// Watch polls the source's fingerprint every interval and reloads on change,
// until ctx ends. Errors are logged; the old set keeps serving.
func (l *Live) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		print, err := l.source.Fingerprint(ctx)
		if err != nil {
			l.log.Error("model watch failed", "source", l.source.String(), "err", err)
			continue
		}
		l.mu.Lock()
		same := print == l.print
		l.mu.Unlock()
		if same {
			continue
		}
		if err := l.Reload(ctx); err != nil && !errors.Is(err, context.Canceled) {
			l.log.Error("model reload failed; still serving the previous versions", "err", err)
		}
	}
}
