package registry

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func copyVersion(t *testing.T, dir, version string) {
	t.Helper()
	if err := os.CopyFS(filepath.Join(dir, version), os.DirFS(filepath.Join("..", "..", "models", version))); err != nil {
		t.Fatal(err)
	}
}

func TestLiveReload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	copyVersion(t, dir, "v1")
	src := Directory{Root: dir}
	live, err := NewLive(ctx, src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	first := live.Current()
	loadedAt := first.Latest().LoadedAt
	print1, _ := src.Fingerprint(ctx)

	// Nothing changed: the fingerprint is stable and LoadedAt is kept.
	if print2, _ := src.Fingerprint(ctx); print2 != print1 {
		t.Error("fingerprint changed without a change")
	}
	time.Sleep(5 * time.Millisecond)
	copyVersion(t, dir, "v2")
	if print3, _ := src.Fingerprint(ctx); print3 == print1 {
		t.Error("fingerprint did not change when a version was added")
	}
	if err := live.Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	set := live.Current()
	if strings.Join(set.Versions(), ",") != "v1,v2" || set.Latest().Meta.Version != "v2" {
		t.Errorf("versions %v", set.Versions())
	}
	if v1, _ := set.Get("v1"); !v1.LoadedAt.Equal(loadedAt) {
		t.Error("an unchanged version got a new LoadedAt")
	}
	// The old snapshot is untouched: requests holding it finish on it.
	if first.Len() != 1 {
		t.Error("reload mutated the previous set")
	}

	// A broken artifact fails the reload and the current set stays.
	os.WriteFile(filepath.Join(dir, "v2", "model.json"), []byte("{"), 0o644)
	if err := live.Reload(ctx); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "v2", "model.json")) {
		t.Errorf("broken artifact: %v", err)
	}
	if live.Current() != set {
		t.Error("failed reload replaced the set")
	}
	// An empty directory is an error, not an empty server.
	if _, err := NewLive(ctx, Directory{Root: t.TempDir()}, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Error("empty models directory accepted")
	}
}
