package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/model"
)

// scripted is a Source whose answers the test sets: Live's contract with
// its sources, apart from any real backend (each real source has its own
// tests: Directory here, MLflow in mlflowsource against a real server).
type scripted struct {
	mu       sync.Mutex
	print    string
	printErr error
	entries  []Entry
	loadErr  error
	loads    int
}

func (s *scripted) set(f func(s *scripted)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *scripted) Load(context.Context) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	return s.entries, s.loadErr
}

func (s *scripted) Fingerprint(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.print, s.printErr
}

func (s *scripted) String() string { return "scripted" }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// registryEntry is models/<artifact> served as registry version name.
func registryEntry(t *testing.T, artifact, name string, o Origin) Entry {
	t.Helper()
	v, err := model.LoadArtifact(filepath.Join("..", "..", "models", artifact))
	if err != nil {
		t.Fatal(err)
	}
	v.Meta.Version = name
	return Entry{Version: v, Origin: &o}
}

// TestPartialLoadServesAndReports: a source that refreshed one alias and
// kept the other's previous version returns both with an error; the Live
// serves them, reports the error, and forgets the fingerprint so the next
// poll tries again.
func TestPartialLoadServesAndReports(t *testing.T) {
	ctx := context.Background()
	prod := registryEntry(t, "v1", "v1", Origin{Model: "m", Version: "1", Aliases: []string{"production"}, Primary: true})
	staging := registryEntry(t, "v2", "v2", Origin{Model: "m", Version: "2", Aliases: []string{"staging"}})
	src := &scripted{print: "a", entries: []Entry{prod, staging}}
	var reports []error
	live := NewLiveUnloaded(src, quiet())
	live.OnReload = func(err error) { reports = append(reports, err) }
	if live.Current().Len() != 0 || live.Current().Default() != nil {
		t.Fatal("an unloaded Live serves something")
	}
	if err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if live.print != "a" || live.Status().LastError != nil || live.Status().LastSuccess.IsZero() {
		t.Errorf("after a full load: print %q, status %+v", live.print, live.Status())
	}

	refused := errors.New("alias staging: version 3 refused: digest mismatch")
	src.set(func(s *scripted) { s.print, s.loadErr = "b", refused })
	err := live.Reload(ctx)
	if !errors.Is(err, refused) {
		t.Fatalf("partial load: %v, want the source's error", err)
	}
	set := live.Current()
	if strings.Join(set.Versions(), ",") != "v1,v2" || live.print != "" {
		t.Errorf("partial load: versions %v, print %q (want both served, the print forgotten)", set.Versions(), live.print)
	}
	if !errors.Is(live.Status().LastError, refused) || len(reports) != 2 || reports[0] != nil || !errors.Is(reports[1], refused) {
		t.Errorf("partial load: status %+v, reports %v", live.Status(), reports)
	}

	// A load with nothing to serve keeps the set.
	src.set(func(s *scripted) { s.entries, s.loadErr = nil, errors.New("registry down") })
	if err := live.Reload(ctx); err == nil || live.Current() != set {
		t.Errorf("failed load: %v; set replaced: %v", err, live.Current() != set)
	}
	src.set(func(s *scripted) { s.loadErr = nil })
	if err := live.Reload(ctx); err == nil || !strings.Contains(err.Error(), "no model versions") || live.Current() != set {
		t.Errorf("empty load: %v", err)
	}
}

// TestDefaultAndAliases: unpinned traffic goes to the primary version (the
// first alias, production), not to the newest; aliases resolve to versions;
// names sort by number.
func TestDefaultAndAliases(t *testing.T) {
	ctx := context.Background()
	prod := registryEntry(t, "v1", "v9", Origin{Model: "m", Version: "9", Aliases: []string{"production"}, Primary: true})
	staging := registryEntry(t, "v2", "v10", Origin{Model: "m", Version: "10", Aliases: []string{"canary", "staging"}})
	src := &scripted{print: "a", entries: []Entry{staging, prod}}
	live, err := NewLive(ctx, src, quiet())
	if err != nil {
		t.Fatal(err)
	}
	set := live.Current()
	if got := strings.Join(set.Versions(), ","); got != "v9,v10" {
		t.Errorf("versions %s, want v9,v10 (by number)", got)
	}
	if set.Latest().Meta.Version != "v10" || set.Default().Meta.Version != "v9" {
		t.Errorf("latest %s, default %s: want v10 and the primary v9", set.Latest().Meta.Version, set.Default().Meta.Version)
	}
	for alias, want := range map[string]string{"production": "v9", "staging": "v10", "canary": "v10", "v9": "v9"} {
		if v, ok := set.Get(alias); !ok || v.Meta.Version != want {
			t.Errorf("Get(%q) = %v, want %s", alias, v, want)
		}
	}
	if _, ok := set.Get("latest"); ok {
		t.Error("an unknown alias resolved")
	}

	// Without a primary (a directory), the latest is the default.
	src.set(func(s *scripted) { s.entries = []Entry{{Version: prod.Version}, {Version: staging.Version}} })
	if err := live.Reload(ctx); err != nil || live.Current().Default().Meta.Version != "v10" || live.Current().Aliases() != nil {
		t.Errorf("no primary: %v, default %v", err, live.Current().Default())
	}

	// Inconsistent entries are refused.
	bad := map[string][]Entry{
		"two primaries":  {prod, registryEntry(t, "v2", "v10", Origin{Primary: true})},
		"alias twice":    {prod, registryEntry(t, "v2", "v10", Origin{Aliases: []string{"production"}})},
		"alias = a name": {prod, registryEntry(t, "v2", "v10", Origin{Aliases: []string{"v9"}})},
		"name twice":     {prod, registryEntry(t, "v2", "v9", Origin{})},
	}
	for what, entries := range bad {
		src.set(func(s *scripted) { s.entries = entries })
		before := live.Current()
		if err := live.Reload(ctx); err == nil || live.Current() != before {
			t.Errorf("%s: accepted (%v)", what, err)
		}
	}
}

// TestWatchRetriesUntilLoadedThenPolls: an unloaded Live retries with a
// backoff until the source answers, then polls; a failing poll is reported
// (counted by the caller) and keeps the set, and a poll that succeeds again
// clears the error.
func TestWatchRetriesUntilLoadedThenPolls(t *testing.T) {
	down := errors.New("connection refused")
	src := &scripted{printErr: down}
	live := NewLiveUnloaded(src, quiet())
	var mu sync.Mutex
	var reports []error
	live.OnReload = func(err error) {
		mu.Lock()
		reports = append(reports, err)
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		live.Watch(ctx, 50*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()

	waitFor(t, "two failed attempts", func() bool { mu.Lock(); defer mu.Unlock(); return len(reports) >= 2 })
	if live.Current().Len() != 0 || !errors.Is(live.Status().LastError, down) {
		t.Fatalf("while down: %d versions, status %+v", live.Current().Len(), live.Status())
	}
	entry := registryEntry(t, "v2", "v3", Origin{Aliases: []string{"production"}, Primary: true})
	src.set(func(s *scripted) { s.printErr, s.print, s.entries = nil, "p1", []Entry{entry} })
	waitFor(t, "the first load", func() bool { return live.Current().Len() == 1 })

	// Down again: polls fail, are reported, the set stays.
	mu.Lock()
	n := len(reports)
	mu.Unlock()
	set := live.Current()
	src.set(func(s *scripted) { s.printErr = down })
	waitFor(t, "a reported failed poll", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reports) > n && errors.Is(reports[len(reports)-1], down)
	})
	if live.Current() != set {
		t.Error("a failed poll replaced the set")
	}
	// Back, nothing moved: the error clears, nothing reloads.
	loads := src.loads
	src.set(func(s *scripted) { s.printErr = nil })
	waitFor(t, "the error cleared", func() bool { return live.Status().LastError == nil })
	if src.loads != loads || live.Current() != set {
		t.Errorf("an unchanged fingerprint reloaded (%d loads, was %d)", src.loads, loads)
	}
	// Moved: reloaded.
	moved := registryEntry(t, "v1", "v4", Origin{Aliases: []string{"production"}, Primary: true})
	src.set(func(s *scripted) { s.print, s.entries = "p2", []Entry{moved} })
	waitFor(t, "the move", func() bool { return live.Current().Default().Meta.Version == "v4" })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestVersionOrder(t *testing.T) {
	want := []string{"1", "2", "10", "a", "v1", "v01", "v2", "v9", "v10", "v10a", "v10b", "v11", "v100", "v1000.2", "v1000.10", "w"}
	got := slices.Clone(want)
	rand.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
	slices.SortFunc(got, VersionOrder)
	if !slices.Equal(got, want) {
		t.Errorf("sorted %v\nwant   %v", got, want)
	}
	for _, s := range want {
		if VersionOrder(s, s) != 0 {
			t.Errorf("VersionOrder(%q, %q) != 0", s, s)
		}
	}
}
