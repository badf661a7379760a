package mlflowsource_test

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/lifecycle"
	"github.com/ml-platform/platform/internal/mlflow"
	"github.com/ml-platform/platform/internal/mlflowtest"
	"github.com/ml-platform/platform/internal/model"
	"github.com/ml-platform/platform/internal/registry"
	"github.com/ml-platform/platform/internal/registry/mlflowsource"
)

var repoModels = filepath.Join("..", "..", "..", "models")

// world is one registered model on a real MLflow server.
type world struct {
	t     *testing.T
	srv   *mlflowtest.Server
	c     *mlflow.Client
	reg   *lifecycle.Registry
	model string
}

func newWorld(t *testing.T, srv *mlflowtest.Server, name string) *world {
	c, err := mlflow.New(srv.URL, mlflow.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	model := name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	reg, err := lifecycle.New(c, model)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, srv: srv, c: c, reg: reg, model: model}
}

// register registers the artifact directory dir and returns its version.
func (w *world) register(dir string) mlflow.ModelVersion {
	w.t.Helper()
	a, err := lifecycle.ReadArtifact(dir)
	if err != nil {
		w.t.Fatal(err)
	}
	res, err := w.reg.Register(w.t.Context(), lifecycle.RegisterRequest{Artifact: a, Revision: lifecycle.Revision{Commit: "test"}, Experiment: w.model})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.Version
}

func (w *world) alias(alias, version string) {
	w.t.Helper()
	if err := w.c.SetAlias(w.t.Context(), w.model, alias, version); err != nil {
		w.t.Fatal(err)
	}
}

// storedPath is where the server keeps a file of a version's artifact
// (hack/mlflow.sh: --artifacts-destination DATA/artifacts).
func (w *world) storedPath(mv mlflow.ModelVersion, file string) string {
	return filepath.Join(w.srv.StoredPath(mv.Source), file)
}

func (w *world) uri(alias string) lifecycle.ModelURI {
	return lifecycle.ModelURI{Model: w.model, Alias: alias}
}

// follow makes a Live on a fresh Source over uris with cacheDir.
func (w *world) follow(cacheDir string, uris ...lifecycle.ModelURI) (*registry.Live, *[]error) {
	w.t.Helper()
	src, err := mlflowsource.New(mlflowsource.Config{Client: w.c, URIs: uris, CacheDir: cacheDir, Log: quiet()})
	if err != nil {
		w.t.Fatal(err)
	}
	live := registry.NewLiveUnloaded(src, quiet())
	var reports []error
	live.OnReload = func(err error) { reports = append(reports, err) }
	return live, &reports
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func copyArtifact(t *testing.T, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), version)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repoModels, version))); err != nil {
		t.Fatal(err)
	}
	return dir
}

func served(set *registry.Set) string {
	var parts []string
	for _, name := range set.Versions() {
		v, _ := set.Get(name)
		s := name
		if v.Origin != nil {
			s += "[" + strings.Join(v.Origin.Aliases, ",") + "]"
			if v.Origin.Primary {
				s += "*"
			}
			if v.Origin.FromCache {
				s += "(cache)"
			}
			if v.Origin.Stale != "" {
				s += "(stale)"
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func wantServed(t *testing.T, live *registry.Live, want string) {
	t.Helper()
	if got := served(live.Current()); got != want {
		t.Errorf("served %q, want %q", got, want)
	}
}

// TestSource follows aliases on one real MLflow server through the faults
// the source must survive; each subtest has a registered model of its own.
func TestSource(t *testing.T) {
	srv := mlflowtest.Start(t)
	t.Run("follows", func(t *testing.T) { testFollows(t, newWorld(t, srv, "follows")) })
	t.Run("refuses", func(t *testing.T) { testRefuses(t, newWorld(t, srv, "refuses")) })
	t.Run("primary-missing", func(t *testing.T) { testPrimaryMissing(t, newWorld(t, srv, "primary")) })
	t.Run("pinned", func(t *testing.T) { testPinned(t, newWorld(t, srv, "pinned")) })
	// Last: it stops the server.
	t.Run("cache", func(t *testing.T) { testCache(t, newWorld(t, srv, "cache")) })
}

func testFollows(t *testing.T, w *world) {
	ctx := t.Context()
	v1, v2 := w.register(filepath.Join(repoModels, "v1")), w.register(filepath.Join(repoModels, "v2"))
	w.alias("production", v1.Version)
	w.alias("staging", v2.Version)
	cacheDir := t.TempDir()
	live, reports := w.follow(cacheDir, w.uri("production"), w.uri("staging"))
	if err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, live, "v1[production]* v2[staging]")
	set := live.Current()
	if d := set.Default(); d.Meta.Version != "v1" {
		t.Errorf("default %s, want production's v1", d.Meta.Version)
	}
	staging, _ := set.Get("staging")
	o := staging.Origin
	a2, _ := lifecycle.ReadArtifact(filepath.Join(repoModels, "v2"))
	if o.Model != w.model || o.Version != "2" || o.RunID != v2.RunID || o.Digest != a2.Digest || o.ArtifactVersion != "v2" ||
		o.Source != v2.Source || o.RunMetrics["f1_score"] != a2.Meta.Metrics.F1Score || staging.Meta.Name != w.model {
		t.Errorf("staging's origin %+v (meta name %s)", o, staging.Meta.Name)
	}
	// The cache holds exactly the two artifacts, verified.
	cached, _ := os.ReadDir(filepath.Join(cacheDir, "artifacts"))
	if len(cached) != 2 {
		t.Errorf("cache holds %d artifacts, want 2", len(cached))
	}
	if err := model.VerifyDigest(staging.Dir, a2.Digest); err != nil || !strings.HasPrefix(staging.Dir, cacheDir) {
		t.Errorf("staging is served from %s: %v", staging.Dir, err)
	}

	// Nothing moved: the fingerprint is stable, a reload keeps LoadedAt.
	loadedAt := staging.LoadedAt
	if err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if again, _ := live.Current().Get("v2"); !again.LoadedAt.Equal(loadedAt) {
		t.Error("an unchanged version got a new LoadedAt")
	}

	// Both aliases on one version: served once, with both names.
	w.alias("staging", v1.Version)
	if err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, live, "v1[production,staging]*")
	// A move of production swaps the primary.
	w.alias("production", v2.Version)
	if err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, live, "v1[staging] v2[production]*")
	// The staging alias deleted: staging keeps serving, the error is
	// reported, production still moves.
	if err := w.c.DeleteAlias(ctx, w.model, "staging"); err != nil {
		t.Fatal(err)
	}
	n := len(*reports)
	err := live.Reload(ctx)
	if !errors.Is(err, mlflow.ErrNotFound) || !strings.Contains(err.Error(), "@staging") {
		t.Errorf("a deleted alias: %v", err)
	}
	wantServed(t, live, "v1[staging](stale) v2[production]*")
	if len(*reports) != n+1 || (*reports)[n] == nil {
		t.Errorf("the deleted alias was not reported: %v", (*reports)[n:])
	}
	w.alias("production", v1.Version)
	live.Reload(ctx)
	wantServed(t, live, "v1[production,staging]*(stale)")
	w.alias("staging", v2.Version)
	if err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, live, "v1[production]* v2[staging]")
	// A third version on staging: the cache keeps what is served and what
	// each alias served before (a rollback finds it on disk), and drops the
	// rest.
	dir := copyArtifact(t, "v2")
	os.WriteFile(filepath.Join(dir, "NOTES"), []byte("a third artifact"), 0o644)
	v3 := w.register(dir)
	cachedNow := func() int {
		entries, _ := os.ReadDir(filepath.Join(cacheDir, "artifacts"))
		return len(entries)
	}
	w.alias("staging", v3.Version)
	for range 2 { // a second reload, with nothing moved, keeps them
		if err := live.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		wantServed(t, live, "v1[production]* v3[staging]")
		if n := cachedNow(); n != 3 {
			t.Errorf("cache holds %d artifacts, want 3 (v1 and v3 served, v2 the previous of both)", n)
		}
	}
	w.alias("production", v2.Version)
	w.alias("production", v3.Version)
	live.Reload(ctx)
	wantServed(t, live, "v3[production,staging]*")
	if n := cachedNow(); n != 3 {
		t.Errorf("cache holds %d artifacts, want 3 (v3 served, v1 production's previous, v2 staging's)", n)
	}
	w.alias("production", v2.Version)
	live.Reload(ctx)
	w.alias("production", v3.Version)
	live.Reload(ctx)
	if n := cachedNow(); n != 2 {
		t.Errorf("cache holds %d artifacts, want 2 (v3 served, v2 the previous of both)", n)
	}
}

func testRefuses(t *testing.T, w *world) {
	ctx := t.Context()
	v1 := w.register(filepath.Join(repoModels, "v1"))
	w.alias("production", v1.Version)
	live, _ := w.follow(t.TempDir(), w.uri("production"))
	if err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	good := live.Current()

	refused := func(what, want string) {
		t.Helper()
		err := live.Reload(ctx)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", what, err, want)
		}
		if got := live.Current(); got.Default().Meta.Version != "v1" || got.Default().Dir != good.Default().Dir {
			t.Errorf("%s: served %s, want v1 still", what, served(got))
		}
		if d := live.Current().Default(); d.Origin.Stale == "" {
			t.Errorf("%s: v1 is not marked stale", what)
		}
	}

	// A stored file changed after registration: the digest does not match.
	dir := copyArtifact(t, "v2")
	v2 := w.register(dir)
	path := w.storedPath(v2, "lexicon.tsv")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, append(data, "extra\t1.0\n"...), 0o644)
	w.alias("production", v2.Version)
	refused("a corrupt artifact", "artifact digest mismatch")

	// A tag that names another digest.
	v3 := w.register(filepath.Join(repoModels, "v2"))
	if err := w.c.SetModelVersionTag(ctx, w.model, v3.Version, lifecycle.TagDigest, "sha256:"+strings.Repeat("0", 64)); err != nil {
		t.Fatal(err)
	}
	w.alias("production", v3.Version)
	refused("a wrong digest tag", "artifact digest mismatch")
	// No digest at all (a version made by hand).
	plain, err := w.c.CreateModelVersion(ctx, mlflow.CreateModelVersionRequest{Name: w.model, Source: v1.Source, RunID: v1.RunID})
	if err != nil {
		t.Fatal(err)
	}
	w.alias("production", plain.Version)
	refused("no digest tag", "is not an artifact digest")
	// An artifact whose digest matches but that this build cannot load.
	broken := copyArtifact(t, "v1")
	os.WriteFile(filepath.Join(broken, "model.json"), []byte(`{"name":"x","version":"v9","kind":"nope","created":"2026-01-01T00:00:00Z"}`), 0o644)
	run, err := lifecycle.LogRun(ctx, w.c, lifecycle.RunSpec{Experiment: w.model, ArtifactDir: broken})
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := model.Digest(broken)
	bad, err := w.c.CreateModelVersion(ctx, mlflow.CreateModelVersionRequest{Name: w.model, Source: run.Info.ArtifactURI + "/model", RunID: run.Info.ID,
		Tags: mlflow.KeyValues{lifecycle.TagDigest: digest}})
	if err != nil {
		t.Fatal(err)
	}
	w.alias("production", bad.Version)
	refused("an artifact that does not load", `unknown model kind "nope"`)
	// A source outside the tracking server's proxy.
	elsewhere, err := w.c.CreateModelVersion(ctx, mlflow.CreateModelVersionRequest{Name: w.model, Source: "s3://bucket/model",
		Tags: mlflow.KeyValues{lifecycle.TagDigest: digest}})
	if err != nil {
		t.Fatal(err)
	}
	w.alias("production", elsewhere.Version)
	refused("a source outside the proxy", "only mlflow-artifacts")

	// Back to a good version: served, no longer stale.
	w.alias("production", v1.Version)
	if err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, live, "v1[production]*")
}

func testPrimaryMissing(t *testing.T, w *world) {
	ctx := t.Context()
	v1 := w.register(filepath.Join(repoModels, "v1"))
	w.alias("staging", v1.Version)
	live, reports := w.follow(t.TempDir(), w.uri("production"), w.uri("staging"))
	err := live.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "the primary, has no version") || live.Current().Len() != 0 {
		t.Errorf("production missing at start: %v, serving %q", err, served(live.Current()))
	}
	if len(*reports) != 1 || (*reports)[0] == nil {
		t.Errorf("reports %v", *reports)
	}
	w.alias("production", v1.Version)
	if err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, live, "v1[production,staging]*")
}

// testPinned: models:/NAME/N serves version N whatever the aliases do.
func testPinned(t *testing.T, w *world) {
	ctx := t.Context()
	v1, v2 := w.register(filepath.Join(repoModels, "v1")), w.register(filepath.Join(repoModels, "v2"))
	w.alias("production", v2.Version)
	live, _ := w.follow(t.TempDir(), lifecycle.ModelURI{Model: w.model, Version: v1.Version}, w.uri("production"))
	if err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, live, "v1[]* v2[production]")
	w.alias("production", v1.Version)
	if err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, live, "v1[production]*")
	pinned := lifecycle.ModelURI{Model: w.model, Version: "9"}
	missing, _ := w.follow(t.TempDir(), pinned)
	if err := missing.Reload(ctx); err == nil || !strings.Contains(err.Error(), pinned.String()) {
		t.Errorf("a pinned version that does not exist: %v", err)
	}
}

// testCache: a restart while MLflow is down serves the cached versions and
// says so; a damaged cache is refused; MLflow back clears the mark.
func testCache(t *testing.T, w *world) {
	ctx := t.Context()
	v1, v2 := w.register(filepath.Join(repoModels, "v1")), w.register(filepath.Join(repoModels, "v2"))
	w.alias("production", v2.Version)
	w.alias("staging", v1.Version)
	cacheDir := t.TempDir()
	first, _ := w.follow(cacheDir, w.uri("production"), w.uri("staging"))
	if err := first.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	damaged := t.TempDir()
	os.CopyFS(damaged, os.DirFS(cacheDir))

	w.srv.Kill()
	// The first Live keeps serving through failed refreshes, each version
	// marked as not refreshed.
	if err := first.Reload(ctx); err == nil {
		t.Error("a reload with MLflow down succeeded")
	}
	wantServed(t, first, "v1[staging](stale) v2[production]*(stale)")

	// A new process on the same cache: served from it.
	restarted, reports := w.follow(cacheDir, w.uri("production"), w.uri("staging"))
	err := restarted.Reload(ctx)
	var te *mlflow.TransportError
	if !errors.As(err, &te) {
		t.Errorf("start with MLflow down: %v, want the transport error reported", err)
	}
	wantServed(t, restarted, "v1[staging](cache) v2[production]*(cache)")
	if d := restarted.Current().Default(); d.Origin.RunID != v2.RunID || d.Origin.RunMetrics["accuracy"] == 0 || d.Origin.ArtifactVersion != "v2" {
		t.Errorf("cached origin %+v", d.Origin)
	}
	if len(*reports) != 1 || (*reports)[0] == nil {
		t.Errorf("reports %v", *reports)
	}
	// Without a cache: nothing to serve.
	empty, _ := w.follow(t.TempDir(), w.uri("production"))
	if err := empty.Reload(ctx); err == nil || empty.Current().Len() != 0 {
		t.Errorf("start with MLflow down and no cache: %v, serving %q", err, served(empty.Current()))
	}
	// A damaged cached artifact is not served.
	entries, _ := os.ReadDir(filepath.Join(damaged, "artifacts"))
	for _, e := range entries {
		files, _ := os.ReadDir(filepath.Join(damaged, "artifacts", e.Name()))
		os.WriteFile(filepath.Join(damaged, "artifacts", e.Name(), files[0].Name()), []byte("rot"), 0o644)
	}
	rotten, _ := w.follow(damaged, w.uri("production"))
	if err := rotten.Reload(ctx); err == nil || !strings.Contains(err.Error(), "artifact digest mismatch") || rotten.Current().Len() != 0 {
		t.Errorf("a damaged cache: %v, serving %q", err, served(rotten.Current()))
	}

	// MLflow back: confirmed, the cache mark gone, and the damaged copy
	// replaced by a fresh download.
	w.srv.Restart()
	if err := restarted.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, restarted, "v1[staging] v2[production]*")
	if err := rotten.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, rotten, "v2[production]*")
	if got := served(first.Current()); got != "v1[staging](stale) v2[production]*(stale)" {
		t.Errorf("the first Live before its next refresh: %q", got)
	}
	if err := first.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantServed(t, first, "v1[staging] v2[production]*")
}

func TestNewRefusesBadConfig(t *testing.T) {
	c, _ := mlflow.New("http://127.0.0.1:1")
	a := lifecycle.ModelURI{Model: "a", Alias: "production"}
	for what, cfg := range map[string]mlflowsource.Config{
		"no URI":        {Client: c, CacheDir: t.TempDir()},
		"two models":    {Client: c, URIs: []lifecycle.ModelURI{a, {Model: "b", Alias: "staging"}}, CacheDir: t.TempDir()},
		"a URI twice":   {Client: c, URIs: []lifecycle.ModelURI{a, a}, CacheDir: t.TempDir()},
		"no cache":      {Client: c, URIs: []lifecycle.ModelURI{a}},
		"alias like v3": {Client: c, URIs: []lifecycle.ModelURI{{Model: "a", Alias: "v3"}}, CacheDir: t.TempDir()},
		"unwritable":    {Client: c, URIs: []lifecycle.ModelURI{a}, CacheDir: "/proc/no-cache-here"},
	} {
		if _, err := mlflowsource.New(cfg); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}
