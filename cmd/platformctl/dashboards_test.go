package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDashboardsAreFresh fails when the committed dashboards are not what
// `platformctl dashboards generate` makes from internal/dashboards today, or
// when one of their queries selects a metric that does not exist.
func TestDashboardsAreFresh(t *testing.T) {
	chdirRepo(t)
	var out strings.Builder
	if err := run(context.Background(), []string{"dashboards", "generate", "--check"}, os.Getenv, &out, io.Discard); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(strings.TrimSpace(out.String()))
}

// copyDashboards copies the committed dashboards to a temporary directory.
func copyDashboards(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dashboards")
	if err := os.CopyFS(dir, os.DirFS(defaultDashboardsDir)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDashboardsCheckCatchesPlantedChange edits, removes and adds files in a
// copy of the committed dashboards and expects --check to name each.
func TestDashboardsCheckCatchesPlantedChange(t *testing.T) {
	chdirRepo(t)
	overview := "ml-inference-overview.json"
	plants := map[string]struct {
		plant func(t *testing.T, dir string)
		file  string
		want  string
	}{
		"hand-edited title": {func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, overview), `"title": "Request rate"`, `"title": "Requests"`)
		}, overview, "stale"},
		"hand-edited query": {func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, overview), `[$__rate_interval]`, `[5m]`)
		}, overview, "stale"},
		"reformatted": {func(t *testing.T, dir string) {
			edit(t, filepath.Join(dir, overview), "\n  ", "\n    ")
		}, overview, "stale"},
		"deleted": {func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, overview)); err != nil {
				t.Fatal(err)
			}
		}, overview, "missing"},
		"stray dashboard": {func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "hand-made.json"), []byte("{}\n"), 0o644)
		}, "hand-made.json", "not generated"},
	}
	for name, p := range plants {
		t.Run(name, func(t *testing.T) {
			dir := copyDashboards(t)
			p.plant(t, dir)
			path := filepath.Join(dir, p.file)
			err := run(context.Background(), []string{"dashboards", "generate", "--check", "--out", dir}, os.Getenv, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), p.want) || !strings.Contains(err.Error(), "make dashboards") {
				t.Fatalf("err %v, want it to name %s as %s and say to run make dashboards", err, path, p.want)
			}
			t.Log(err)
		})
	}
	// Other files (a kustomization.yaml, a README) are not dashboards.
	dir := copyDashboards(t)
	os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("resources: []\n"), 0o644)
	if err := run(context.Background(), []string{"dashboards", "generate", "--check", "--out", dir}, os.Getenv, io.Discard, io.Discard); err != nil {
		t.Errorf("a non-JSON file in the directory: %v", err)
	}
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	planted := strings.Replace(string(data), old, new, 1)
	if planted == string(data) {
		t.Fatalf("plant %q changed nothing in %s; update the test", old, path)
	}
	if err := os.WriteFile(path, []byte(planted), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDashboardsGenerateWrites generates into an empty directory: the same
// bytes as the committed files, and --check agrees.
func TestDashboardsGenerateWrites(t *testing.T) {
	chdirRepo(t)
	dir := filepath.Join(t.TempDir(), "new")
	var out strings.Builder
	if err := run(context.Background(), []string{"dashboards", "generate", "--out", dir}, os.Getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	committed, _ := os.ReadDir(defaultDashboardsDir)
	if len(entries) == 0 || len(entries) != countJSON(committed) {
		t.Fatalf("wrote %d files, %d committed", len(entries), countJSON(committed))
	}
	for _, e := range entries {
		a, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		b, _ := os.ReadFile(filepath.Join(defaultDashboardsDir, e.Name()))
		if string(a) != string(b) {
			t.Errorf("%s differs from the committed file", e.Name())
		}
	}
	if err := run(context.Background(), []string{"dashboards", "generate", "--check", "--out", dir}, os.Getenv, io.Discard, io.Discard); err != nil {
		t.Errorf("--check after generate: %v", err)
	}
	// A stray file is reported after writing the others.
	os.WriteFile(filepath.Join(dir, "old.json"), []byte("{}\n"), 0o644)
	err := run(context.Background(), []string{"dashboards", "generate", "--out", dir}, os.Getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "old.json")) {
		t.Errorf("stray file: err %v, want it named", err)
	}
}

func countJSON(entries []os.DirEntry) int {
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			n++
		}
	}
	return n
}

// TestDashboardsRefuseUnrecordedSeries: with a rules file that does not
// record the SLO series, generation fails, naming the dashboard, the panel
// and the series, and writes nothing.
func TestDashboardsRefuseUnrecordedSeries(t *testing.T) {
	chdirRepo(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte("groups:\n- name: other\n  rules:\n  - record: job:up:sum\n    expr: sum(up)\n"), 0o644)
	dir := filepath.Join(t.TempDir(), "out")
	err := run(context.Background(), []string{"dashboards", "generate", "--rules", rules, "--out", dir}, os.Getenv, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"ml-inference-slos", `panel "Error budget remaining"`, `unknown metric "slo:period_error_budget_remaining:ratio"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err does not contain %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "ml-inference-overview") {
		t.Errorf("the overview uses no recorded series, yet is reported:\n%v", err)
	}
	if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
		t.Errorf("%s was written despite the error", dir)
	}
	missing := filepath.Join(t.TempDir(), "none.yaml")
	err = run(context.Background(), []string{"dashboards", "generate", "--check", "--rules", missing}, os.Getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing rules file: err %v, want it named", err)
	}
}
