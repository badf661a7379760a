package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/inferencetest"
	"github.com/ml-platform/platform/internal/lifecycle"
	"github.com/ml-platform/platform/internal/mlflow"
	"github.com/ml-platform/platform/internal/mlflowtest"
)

// TestFollowsMLflow runs the real binary against a real MLflow server
// through the faults it must survive, in order: serving production and
// staging side by side; a corrupt artifact and a deleted alias (refused,
// counted, the old versions keep serving); MLflow killed mid-run under load
// (no failed request); a restart while MLflow is down, with a cache (served
// from it, and /ready says so) and without (not ready, retrying); MLflow
// back (both recover).
func TestFollowsMLflow(t *testing.T) {
	srv := mlflowtest.Start(t)
	c, err := mlflow.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	name := "follow-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	reg, err := lifecycle.New(c, name)
	if err != nil {
		t.Fatal(err)
	}
	register := func(dir string) mlflow.ModelVersion {
		t.Helper()
		a, err := lifecycle.ReadArtifact(dir)
		if err != nil {
			t.Fatal(err)
		}
		res, err := reg.Register(ctx, lifecycle.RegisterRequest{Artifact: a, Revision: lifecycle.Revision{Commit: "test"}, Experiment: name})
		if err != nil {
			t.Fatal(err)
		}
		return res.Version
	}
	alias := func(a, v string) {
		t.Helper()
		if err := c.SetAlias(ctx, name, a, v); err != nil {
			t.Fatal(err)
		}
	}
	v1, v2 := register(filepath.Join(repoModels, "v1")), register(filepath.Join(repoModels, "v2"))
	alias("production", v1.Version)
	alias("staging", v2.Version)

	cache := t.TempDir()
	args := func(cacheDir string) []string {
		return []string{"--model-source", "mlflow", "--mlflow-uri", srv.URL, "--registry-poll", "200ms", "--model-cache-dir", cacheDir,
			"--model-uri", "models:/" + name + "@production", "--model-uri", "models:/" + name + "@staging"}
	}
	p1 := inferencetest.Run(t, inferencetest.Options{Args: args(cache), Noise: `"msg":"request"`})
	waitReady(t, p1)

	// Side by side: unpinned traffic to production, staging by pin (by its
	// version name or its alias).
	for pin, want := range map[string]string{"": "v1", "v2": "v2", "staging": "v2", "production": "v1"} {
		if got := servedVersion(t, p1, pin); got != want {
			t.Errorf("X-Model-Version %q: served by %s, want %s", pin, got, want)
		}
	}
	var models struct {
		Models []struct {
			Version  string
			Run      string `json:"run_id"`
			Registry struct {
				Name, Version, Digest, Source string
				Aliases                       []string
				RunID                         string             `json:"run_id"`
				RunMetrics                    map[string]float64 `json:"run_metrics"`
				ArtifactVersion               string             `json:"artifact_version"`
				FromCache                     bool               `json:"from_cache"`
			}
		}
		Aliases map[string]string
		Traffic map[string]float64
	}
	getJSON(t, p1.URL("/models"), &models)
	if len(models.Models) != 2 || models.Aliases["production"] != "v1" || models.Aliases["staging"] != "v2" || models.Traffic["v1"] != 100 {
		t.Fatalf("/models: %+v", models)
	}
	m := models.Models[1].Registry
	if models.Models[1].Version != "v2" || m.Name != name || m.Version != "2" || m.RunID != v2.RunID || models.Models[1].Run != v2.RunID ||
		m.Digest != v2.Tags[lifecycle.TagDigest] || m.ArtifactVersion != "v2" || m.RunMetrics["f1_score"] == 0 || m.FromCache ||
		strings.Join(m.Aliases, ",") != "staging" {
		t.Errorf("/models v2: %+v", models.Models[1])
	}
	var info struct {
		Version  string
		Registry struct{ Aliases []string }
	}
	getJSON(t, p1.URL("/model/info"), &info)
	if info.Version != "v1" || strings.Join(info.Registry.Aliases, ",") != "production" {
		t.Errorf("/model/info: %+v", info)
	}

	load := inferencetest.StartLoad(p1, 2, 2*time.Millisecond)
	t.Cleanup(func() { load.Stop() })

	// A corrupt artifact: refused, counted, production keeps serving v1.
	corrupt := register(copyArtifact(t, "v2", "corrupt"))
	path := filepath.Join(srv.StoredPath(corrupt.Source), "lexicon.tsv")
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(data, "planted\t3\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	errorsBefore := reloads(t, p1, "error")
	alias("production", corrupt.Version)
	eventually(t, "the corrupt version refused and counted", func() bool { return reloads(t, p1, "error") >= errorsBefore+2 })
	if got := servedVersion(t, p1, ""); got != "v1" {
		t.Errorf("after a corrupt promotion: served by %s, want v1", got)
	}
	if !strings.Contains(p1.Logs(), "artifact digest mismatch") {
		t.Error("no log line names the digest mismatch")
	}
	ready := readyBody(t, p1, 200)
	if !strings.Contains(ready, "which was refused") {
		t.Errorf("/ready does not say production's new version was refused: %s", ready)
	}
	alias("production", v1.Version)
	eventually(t, "the warning gone", func() bool { return !strings.Contains(readyBody(t, p1, 200), "refused") })

	// The staging alias deleted: staging keeps serving v2, errors counted.
	if err := c.DeleteAlias(ctx, name, "staging"); err != nil {
		t.Fatal(err)
	}
	errorsBefore = reloads(t, p1, "error")
	eventually(t, "the missing alias counted", func() bool { return reloads(t, p1, "error") >= errorsBefore+2 })
	if got := servedVersion(t, p1, "staging"); got != "v2" {
		t.Errorf("staging after its alias was deleted: %s, want v2 still", got)
	}
	alias("staging", v2.Version)

	// MLflow killed mid-run: p1 keeps serving; the failed polls are counted.
	errorsBefore = reloads(t, p1, "error")
	srv.Kill()
	eventually(t, "failed polls counted", func() bool { return reloads(t, p1, "error") >= errorsBefore+3 })
	if ready := readyBody(t, p1, 200); !strings.Contains(ready, "failed") {
		t.Errorf("/ready with MLflow down does not warn: %s", ready)
	}

	if res := load.Stop(); res.Failed > 0 || res.Sent == 0 {
		t.Errorf("load on p1 through a corrupt version, a deleted alias and MLflow killed: %d of %d requests failed (first: %s)", res.Failed, res.Sent, res.FirstFailure)
	} else {
		t.Logf("load on p1 through a corrupt version, a deleted alias and MLflow killed: %d requests, 0 failed", res.Sent)
	}

	// A restart while MLflow is down: from the cache, ready, and saying so.
	if err := p1.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	p2 := inferencetest.Run(t, inferencetest.Options{Args: args(cache), Noise: `"msg":"request"`})
	waitReady(t, p2)
	if ready := readyBody(t, p2, 200); !strings.Contains(ready, "served from the local model cache") {
		t.Errorf("/ready from the cache does not say so: %s", ready)
	}
	if !strings.Contains(p2.Logs(), "serving the cached copy") {
		t.Error("no log line says the cached copy is served")
	}
	if got := servedVersion(t, p2, ""); got != "v1" {
		t.Errorf("from the cache: served by %s, want v1", got)
	}
	// Without a cache: not ready, a clear log line, retrying.
	p3 := inferencetest.Run(t, inferencetest.Options{Args: args(t.TempDir())})
	eventually(t, "p3's first attempt", func() bool { return strings.Contains(p3.Logs(), "no model version loaded") })
	if body := readyBody(t, p3, 503); !strings.Contains(body, "no model version is loaded") {
		t.Errorf("/ready without models: %s", body)
	}
	if code := postStatus(t, p3); code != 503 {
		t.Errorf("/predict without models: %d, want 503", code)
	}
	load2 := inferencetest.StartLoad(p2, 2, 2*time.Millisecond)
	t.Cleanup(func() { load2.Stop() })

	// MLflow back: p3 becomes ready, p2 is confirmed (no longer from the
	// cache), and a promotion reaches both.
	srv.Restart()
	waitReady(t, p3)
	eventually(t, "p2 confirmed", func() bool { return !strings.Contains(readyBody(t, p2, 200), "cache") })
	alias("production", v2.Version)
	for _, p := range []*inferencetest.Process{p2, p3} {
		eventually(t, "the promotion served", func() bool { return servedVersion(t, p, "") == "v2" })
	}
	if res := load2.Stop(); res.Failed > 0 || res.Sent == 0 {
		t.Errorf("load on p2 through MLflow's restart and a promotion: %d of %d requests failed (first: %s)", res.Failed, res.Sent, res.FirstFailure)
	} else {
		t.Logf("load on p2 through MLflow's restart and a promotion: %d requests, 0 failed", res.Sent)
	}
}

func copyArtifact(t *testing.T, version, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repoModels, version))); err != nil {
		t.Fatal(err)
	}
	// A different digest from the original: a new version, not the same.
	f, err := os.OpenFile(filepath.Join(dir, "LEXICON.md"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n" + name + "\n")
	f.Close()
	return dir
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitReady(t *testing.T, p *inferencetest.Process) {
	t.Helper()
	eventually(t, p.Addr+" ready", func() bool {
		resp, err := http.Get(p.URL("/ready"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func readyBody(t *testing.T, p *inferencetest.Process, want int) string {
	t.Helper()
	resp, err := http.Get(p.URL("/ready"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("/ready: %d %s, want %d", resp.StatusCode, body, want)
	}
	return string(body)
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

// servedVersion is the X-Model-Version of a /predict pinned to pin ("" for
// none).
func servedVersion(t *testing.T, p *inferencetest.Process, pin string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", p.URL("/predict"), strings.NewReader(`{"text":"great"}`))
	req.Header.Set("Content-Type", "application/json")
	if pin != "" {
		req.Header.Set("X-Model-Version", pin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/predict pinned to %q: %d", pin, resp.StatusCode)
	}
	return resp.Header.Get("X-Model-Version")
}

func postStatus(t *testing.T, p *inferencetest.Process) int {
	t.Helper()
	resp, err := http.Post(p.URL("/predict"), "application/json", strings.NewReader(`{"text":"great"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// reloads reads model_reloads_total{result=result} from /metrics.
func reloads(t *testing.T, p *inferencetest.Process, result string) float64 {
	t.Helper()
	resp, err := http.Get(p.URL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	prefix := `model_reloads_total{result="` + result + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return f
		}
	}
	return 0
}
