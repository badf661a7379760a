package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadyWarnsAfterAFailedReload: a refused reload keeps the server ready
// on its previous versions, and /ready says what failed until a reload
// succeeds again.
func TestReadyWarnsAfterAFailedReload(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "v1"), os.DirFS(filepath.Join(repoModels, "v1"))); err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, testOptions{modelsDir: dir})
	ready := func() (int, readyResponse) {
		t.Helper()
		status, _, body := ts.do(t, "GET", "/ready", "")
		var r readyResponse
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("/ready: %v: %s", err, body)
		}
		return status, r
	}
	if status, r := ready(); status != 200 || len(r.Warnings) != 0 {
		t.Fatalf("healthy: %d %+v", status, r)
	}
	meta := filepath.Join(dir, "v1", "model.json")
	good, _ := os.ReadFile(meta)
	os.WriteFile(meta, []byte("{"), 0o644)
	if err := ts.models.Reload(context.Background()); err == nil {
		t.Fatal("a broken artifact reloaded")
	}
	status, r := ready()
	if status != 200 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "failed") || !strings.Contains(r.Warnings[0], meta) {
		t.Errorf("after a failed reload: %d %+v, want ready with a warning naming %s", status, r, meta)
	}
	os.WriteFile(meta, good, 0o644)
	if err := ts.models.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, r := ready(); status != 200 || len(r.Warnings) != 0 {
		t.Errorf("after a good reload: %d %+v", status, r)
	}
}
