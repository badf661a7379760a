package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/evaluate"
	"github.com/ml-platform/platform/internal/registry"
)

func chdirRepo(t *testing.T) {
	t.Helper()
	t.Chdir(filepath.Join("..", ".."))
}

// TestRecordedMetricsAreFresh fails when a model.json holds figures that
// `platformctl model evaluate` would not reproduce today.
func TestRecordedMetricsAreFresh(t *testing.T) {
	chdirRepo(t)
	var out strings.Builder
	if err := run(context.Background(), []string{"model", "evaluate", "--check"}, os.Getenv, &out, io.Discard); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

// TestCheckCatchesStaleMetrics plants a wrong figure and expects --check to
// name the file.
func TestCheckCatchesStaleMetrics(t *testing.T) {
	chdirRepo(t)
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "v1"), os.DirFS(filepath.Join("models", "v1"))); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "v1", "model.json")
	data, _ := os.ReadFile(path)
	planted := strings.Replace(string(data), `"f1_score": `, `"f1_score": 0.99`, 1)
	// Keep the JSON valid: drop the digits that followed.
	i := strings.Index(planted, `"f1_score": 0.99`) + len(`"f1_score": 0.99`)
	j := i + strings.IndexAny(planted[i:], ",\n")
	planted = planted[:i] + planted[j:]
	os.WriteFile(path, []byte(planted), 0o644)
	err := run(context.Background(), []string{"model", "evaluate", "--check", "--models-dir", dir}, os.Getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("planted stale metric: err %v, want it to name %s as stale", err, path)
	}
}

// TestV2BeatsV1 measures both versions on the held-out set.
func TestV2BeatsV1(t *testing.T) {
	chdirRepo(t)
	ds, err := evaluate.LoadCSV(filepath.Join("data", "sentiment", "eval.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Examples) < 500 {
		t.Errorf("evaluation set has %d examples, want at least 500", len(ds.Examples))
	}
	versions, err := registry.Directory{Root: "models"}.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f1 := map[string]float64{}
	for _, v := range versions {
		f1[v.Meta.Version] = evaluate.Run(v.Model, ds).MacroF1
	}
	if f1["v2"] <= f1["v1"] {
		t.Errorf("v2 macro-F1 %.4f does not beat v1 %.4f", f1["v2"], f1["v1"])
	}
	t.Logf("macro-F1 on %d held-out examples: v1 %.4f, v2 %.4f", len(ds.Examples), f1["v1"], f1["v2"])
}

func TestUnknownCommand(t *testing.T) {
	err := run(context.Background(), []string{"frobnicate"}, os.Getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Errorf("err %v", err)
	}
}
