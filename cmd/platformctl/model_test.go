package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/inferencetest"
	"github.com/ml-platform/platform/internal/mlflowtest"
	"github.com/ml-platform/platform/internal/model"
)

func TestMain(m *testing.M) { os.Exit(inferencetest.Main(m)) }

// ctl runs platformctl in-process against one MLflow server and model:
// --mlflow-uri comes from MLFLOW_TRACKING_URI, as an operator's shell would
// set it.
type ctl struct {
	t     *testing.T
	uri   string
	model string
}

func (c ctl) run(args ...string) (string, error) {
	c.t.Helper()
	env := map[string]string{"MLFLOW_TRACKING_URI": c.uri, "PLATFORMCTL_MODEL": c.model}
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), err
}

// ok runs a command that must succeed and returns its output.
func (c ctl) ok(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("platformctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// fails runs a command that must fail with an error containing want.
func (c ctl) fails(want string, args ...string) {
	c.t.Helper()
	out, err := c.run(args...)
	if err == nil || !strings.Contains(err.Error(), want) {
		c.t.Errorf("platformctl %s: err %v (output %q), want an error containing %q", strings.Join(args, " "), err, out, want)
	}
}

func contains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: no %q in\n%s", what, w, out)
		}
	}
}

func gitHead(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestModelLifecycle drives the model commands against one real MLflow
// server: the commands and their errors, MLflow's own Python client reading
// back what they wrote and the very artifact ml-inference loads, and the
// rollback time of two servers under load.
func TestModelLifecycle(t *testing.T) {
	chdirRepo(t)
	srv := mlflowtest.Start(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	c := ctl{t: t, uri: srv.URL, model: "sentiment-" + suffix}
	if !t.Run("commands", func(t *testing.T) { c.t = t; testCommands(t, c) }) {
		t.FailNow()
	}
	t.Run("readback", func(t *testing.T) { c.t = t; testLifecycleReadback(t, srv, c) })
	t.Run("seed", func(t *testing.T) { testSeed(t, ctl{t: t, uri: srv.URL, model: "seed-" + suffix}) })
	t.Run("rollback", func(t *testing.T) {
		testRollbackUnderLoad(t, ctl{t: t, uri: srv.URL, model: "rollback-" + suffix})
	})
}

// testSeed: a fresh registry gets every artifact and its first aliases; a
// second seed, and a seed after an operator's promotion, change nothing.
func testSeed(t *testing.T, c ctl) {
	out := c.ok("model", "seed", "--models-dir", "models", "--alias", "production=v1", "--alias", "staging=v2", "--actor", "bootstrap")
	contains(t, "first seed", out, "registered: "+c.model+" version 1", "registered: "+c.model+" version 2", "set production -> version 1", "set staging -> version 2")
	out = c.ok("model", "seed", "--models-dir", "models", "--alias", "production=v1", "--alias", "staging=v2", "--actor", "bootstrap")
	contains(t, "second seed", out, "already registered: "+c.model+" version 1", "already registered: "+c.model+" version 2", "kept production -> version 1", "kept staging -> version 2")
	if strings.Contains(out, "set ") {
		t.Errorf("a second seed moved an alias:\n%s", out)
	}
	c.ok("model", "promote", "2", "--alias", "production", "--actor", "ana@example.com", "--reason", "v2 is better")
	out = c.ok("model", "seed", "--models-dir", "models", "--alias", "production=v1")
	contains(t, "seed after a promotion", out, "kept production -> version 2")
	out = c.ok("model", "history", "--alias", "production")
	contains(t, "history after seeds", out, "bootstrap", "seed: the registry's first production version, v1 of models", "ana@example.com")
	c.fails("want ALIAS=VERSION", "model", "seed", "--alias", "production")
	c.fails("no artifact v9", "model", "seed", "--models-dir", "models", "--alias", "staging=v9")
	c.fails(`unknown alias "canary"`, "model", "seed", "--models-dir", "models", "--alias", "canary=v1")
	c.fails("no artifact directory", "model", "seed", "--models-dir", t.TempDir())
}

func testCommands(t *testing.T, c ctl) {
	head := gitHead(t)
	out := c.ok("model", "register", "--from-dir", "models/v1")
	contains(t, "register v1", out, "registered "+c.model+" version 1 (served as v1) from models/v1", "git    "+head)
	out = c.ok("model", "register", "--from-dir", "models/v1")
	contains(t, "register v1 again", out, "version 1 already holds sha256:", "nothing registered")
	out = c.ok("model", "register", "--from-dir", "models/v2")
	contains(t, "register v2", out, "version 2 (served as v2)")

	out = c.ok("model", "list")
	contains(t, "list", out, "VERSION", "rule-lexicon", "seed-lexicon", "accuracy=0.8209 f1_score=0.8227", head[:10])

	c.fails("--reason", "model", "promote", "1", "--alias", "production", "--actor", "ana@example.com")
	out = c.ok("model", "promote", "1", "--alias", "production", "--actor", "ana@example.com", "--reason", "first release")
	contains(t, "promote 1", out, "promote of production: none -> version 1", "ana@example.com: first release", "serve v1 after their next poll")
	out = c.ok("model", "promote", "1", "--alias", "production", "--actor", "ana@example.com", "--reason", "again")
	contains(t, "promote 1 again", out, "already points at version 1: nothing moved")
	time.Sleep(1100 * time.Millisecond) // history --at has a resolution of seconds
	between := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	out = c.ok("model", "promote", "v2", "--alias", "production", "--actor", "ben@example.com", "--reason", "v2 beats v1 on macro-F1")
	contains(t, "promote v2", out, "version 1 -> version 2")
	out = c.ok("model", "rollback", "--alias", "production", "--actor", "ana@example.com", "--reason", "complaints about v2")
	contains(t, "rollback", out, "rollback of production: version 2 -> version 1")
	c.ok("model", "promote", "2", "--alias", "staging", "--actor", "ben@example.com", "--reason", "keep trying v2")

	out = c.ok("model", "history", "--alias", "production", "--at", between.Format(time.RFC3339))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("history: %d lines, want a header, 3 moves and the --at line:\n%s", len(lines), out)
	}
	for i, want := range []*regexp.Regexp{
		regexp.MustCompile(`^TIME \(UTC\)\s+ALIAS\s+ACTION\s+FROM\s+TO\s+ACTOR\s+REASON$`),
		regexp.MustCompile(`^\S+Z\s+production\s+promote\s+-\s+1\s+ana@example.com\s+first release$`),
		regexp.MustCompile(`^\S+Z\s+production\s+promote\s+1\s+2\s+ben@example.com\s+v2 beats v1 on macro-F1$`),
		regexp.MustCompile(`^\S+Z\s+production\s+rollback\s+2\s+1\s+ana@example.com\s+complaints about v2$`),
		regexp.MustCompile(`^at \S+, production held version 1$`),
	} {
		if !want.MatchString(lines[i]) {
			t.Errorf("history line %d: %q, want %s", i, lines[i], want)
		}
	}
	out = c.ok("model", "history")
	contains(t, "history of every alias", out, "staging", "keep trying v2")

	// Bad input and missing things, each with a clear error.
	c.fails(`has no version 9 (versions: 2, 1)`, "model", "promote", "9", "--alias", "production", "--reason", "r", "--actor", "a")
	c.fails(`unknown alias "prod": want one of staging, production`, "model", "promote", "1", "--alias", "prod", "--reason", "r", "--actor", "a")
	c.fails("--alias is required", "model", "promote", "1", "--reason", "r")
	c.fails("usage: platformctl model promote VERSION", "model", "promote", "--alias", "production", "--reason", "r")
	c.fails("registry version number", "model", "promote", "latest", "--alias", "production", "--reason", "r", "--actor", "a")
	c.fails("rollback staging: no previous version to roll back to: version 2 is the first", "model", "rollback", "--alias", "staging", "--reason", "r", "--actor", "a")
	c.fails("--from-dir is required", "model", "register")
	c.fails("read model metadata", "model", "register", "--from-dir", "models/none")
	c.fails(`--at "yesterday"`, "model", "history", "--at", "yesterday")
	c.fails(`no registered model "nothing-here"`, "model", "list", "--model", "nothing-here")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + l.Addr().String()
	l.Close()
	for _, args := range [][]string{
		{"model", "list"}, {"model", "history"}, {"model", "register", "--from-dir", "models/v1"},
		{"model", "promote", "1", "--alias", "production", "--reason", "r", "--actor", "a"},
		{"model", "rollback", "--alias", "production", "--reason", "r", "--actor", "a"},
	} {
		c.fails("MLflow is unreachable at "+down, append(args, "--mlflow-uri", down)...)
	}
	out, err := c.run("model", "list", "--mlflow-uri", down)
	if err == nil || !strings.Contains(err.Error(), "make mlflow") {
		t.Errorf("MLflow down: %v %s, want advice to start it", err, out)
	}
}

// testLifecycleReadback: MLflow's own Python client reads back what the
// commands wrote (model, versions with tags and sources, aliases, runs'
// params and metrics, the alias moves), and downloads the version production
// points at, whose digest it computes itself; ml-inference, following
// production, loads exactly those bytes.
func testLifecycleReadback(t *testing.T, srv *mlflowtest.Server, c ctl) {
	ctx := t.Context()
	dest := t.TempDir()
	cmd := exec.CommandContext(ctx, mlflowtest.Python(t), filepath.Join("internal", "mlflow", "testdata", "readback.py"), srv.URL, c.model, ".", dest, "production")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("readback.py: %v\n%s", err, stderr.String())
	}
	var got struct {
		MLflowVersion   string `json:"mlflow_version"`
		RegisteredModel struct {
			Name    string
			Aliases map[string]string
		} `json:"registered_model"`
		Versions []struct {
			Version, Source, Status string
			RunID                   string `json:"run_id"`
			Tags                    map[string]string
			Aliases                 []string
		}
		Runs map[string]struct {
			Status      string
			ArtifactURI string `json:"artifact_uri"`
			Params      map[string]string
			Metrics     map[string]float64
			Tags        map[string]string
		}
		Moves []struct {
			Status string
			Params map[string]string
		}
		Artifact struct {
			Source    string
			LocalPath string `json:"local_path"`
			Digest    string
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("readback.py printed no JSON (%v):\n%s", err, out)
	}
	if got.MLflowVersion != "3.17.2" || got.RegisteredModel.Name != c.model {
		t.Errorf("read back MLflow %s, model %s", got.MLflowVersion, got.RegisteredModel.Name)
	}
	if a := got.RegisteredModel.Aliases; len(a) != 2 || a["production"] != "1" || a["staging"] != "2" {
		t.Errorf("aliases %v, want production 1 and staging 2", a)
	}

	// What each version and its run must hold, from the artifact
	// directories and git, read here without the lifecycle's code.
	head := gitHead(t)
	if len(got.Versions) != 2 {
		t.Fatalf("read back %d versions, want 2", len(got.Versions))
	}
	for i, dir := range []string{"models/v1", "models/v2"} {
		v := got.Versions[i]
		var meta struct {
			Version, Kind string
			Metrics       struct {
				Accuracy      float64
				F1Score       float64 `json:"f1_score"`
				Dataset       string
				DatasetSHA256 string `json:"dataset_sha256"`
				Samples       int
				EvaluatedAt   time.Time `json:"evaluated_at"`
			}
		}
		data, _ := os.ReadFile(filepath.Join(dir, "model.json"))
		if err := json.Unmarshal(data, &meta); err != nil {
			t.Fatal(err)
		}
		digest, err := model.Digest(dir)
		if err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(dir)
		var files []string
		for _, e := range entries {
			files = append(files, e.Name())
		}
		dirty := "false"
		if st, _ := exec.Command("git", "status", "--porcelain", "--", dir).Output(); len(bytes.TrimSpace(st)) > 0 {
			dirty = "true"
		}
		run := got.Runs[v.RunID]
		aliases := map[int]string{0: "production", 1: "staging"}[i]
		checkEqual(t, dir+" version", map[string]string{
			"version": strconv.Itoa(i + 1), "status": v.Status, "source": v.Source, "aliases": strings.Join(v.Aliases, ","),
		}, map[string]string{
			"version": v.Version, "status": "READY", "source": run.ArtifactURI + "/model", "aliases": aliases,
		})
		checkEqual(t, dir+" version tags", v.Tags, map[string]string{
			"artifact_digest": digest, "artifact_kind": meta.Kind, "artifact_version": meta.Version, "git_revision": head,
		})
		checkEqual(t, dir+" run params", run.Params, map[string]string{
			"kind": meta.Kind, "artifact_version": meta.Version, "artifact_digest": digest,
			"artifact_files": strings.Join(files, ","), "artifact_count": strconv.Itoa(len(files)),
			"git_revision": head, "git_dirty": dirty,
			"dataset": meta.Metrics.Dataset, "dataset_sha256": meta.Metrics.DatasetSHA256,
			"dataset_samples": strconv.Itoa(meta.Metrics.Samples), "evaluated_at": meta.Metrics.EvaluatedAt.UTC().Format(time.RFC3339),
		})
		checkEqual(t, dir+" run metrics", fmtMetrics(run.Metrics), fmtMetrics(map[string]float64{"accuracy": meta.Metrics.Accuracy, "f1_score": meta.Metrics.F1Score}))
		checkEqual(t, dir+" run tags", run.Tags, map[string]string{"artifact_digest": digest, "artifact_version": meta.Version})
		if run.Status != "FINISHED" {
			t.Errorf("%s: run status %s", dir, run.Status)
		}
	}

	// The moves, as recorded, in order.
	var moves []string
	for _, m := range got.Moves {
		p := m.Params
		moves = append(moves, strings.Join([]string{m.Status, p["model"], p["alias"], p["action"], p["from_version"], p["to_version"], p["actor"], p["reason"]}, "|"))
	}
	wantMoves := []string{
		"FINISHED|" + c.model + "|production|promote||1|ana@example.com|first release",
		"FINISHED|" + c.model + "|production|promote|1|2|ben@example.com|v2 beats v1 on macro-F1",
		"FINISHED|" + c.model + "|production|rollback|2|1|ana@example.com|complaints about v2",
		"FINISHED|" + c.model + "|staging|promote||2|ben@example.com|keep trying v2",
	}
	checkEqual(t, "alias moves", map[string]string{"moves": strings.Join(moves, "\n")}, map[string]string{"moves": strings.Join(wantMoves, "\n")})

	// The artifact: the digest Python computed from the definition, the
	// tag, the repository's directory and the downloaded copy agree.
	want, _ := model.Digest("models/v1")
	downloaded, err := model.Digest(got.Artifact.LocalPath)
	if err != nil {
		t.Fatal(err)
	}
	if got.Artifact.Digest != want || downloaded != want || got.Versions[0].Tags["artifact_digest"] != want {
		t.Errorf("digests: Python %s, of Python's download %s, tag %s, models/v1 %s", got.Artifact.Digest, downloaded, got.Versions[0].Tags["artifact_digest"], want)
	}

	// ml-inference following production loads those very bytes.
	cache := t.TempDir()
	p := inferencetest.Run(t, inferencetest.Options{Args: []string{"--model-source", "mlflow", "--mlflow-uri", srv.URL,
		"--model-uri", "models:/" + c.model + "@production", "--model-cache-dir", cache}})
	waitReady(t, p)
	var served struct {
		Models []struct {
			Version  string
			Registry struct{ Digest string }
		}
	}
	getJSON(t, p.URL("/models"), &served)
	if len(served.Models) != 1 || served.Models[0].Version != "v1" || served.Models[0].Registry.Digest != want {
		t.Errorf("ml-inference serves %+v, want v1 with %s", served.Models, want)
	}
	loaded := filepath.Join(cache, "artifacts", strings.TrimPrefix(want, model.DigestPrefix))
	if d, err := model.Digest(loaded); err != nil || d != want {
		t.Errorf("ml-inference's copy %s has digest %s (%v), want %s", loaded, d, err, want)
	}
	sameTree(t, got.Artifact.LocalPath, loaded)

	// Planted: one flipped byte in Python's copy is a different digest, and
	// the trees differ.
	path := filepath.Join(got.Artifact.LocalPath, "model.json")
	data, _ := os.ReadFile(path)
	data[0] ^= 1
	os.WriteFile(path, data, 0o644)
	if d, _ := model.Digest(got.Artifact.LocalPath); d == want {
		t.Error("a flipped byte left the digest unchanged")
	}
	if diff := treeDiff(got.Artifact.LocalPath, loaded); len(diff) != 1 || diff[0] != "model.json differs" {
		t.Errorf("a flipped byte: tree diff %v, want model.json", diff)
	}
}

func fmtMetrics(m map[string]float64) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return out
}

func checkEqual(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: %s = %q, want %q", what, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %s = %q", what, k, g)
		}
	}
}

// treeDiff lists how two directory trees differ, file by file.
func treeDiff(a, b string) []string {
	read := func(root string) map[string][]byte {
		files := map[string][]byte{}
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(root, p)
				files[filepath.ToSlash(rel)], _ = os.ReadFile(p)
			}
			return nil
		})
		return files
	}
	fa, fb := read(a), read(b)
	var diff []string
	for name, da := range fa {
		db, ok := fb[name]
		switch {
		case !ok:
			diff = append(diff, name+" only in "+a)
		case !bytes.Equal(da, db):
			diff = append(diff, name+" differs")
		}
	}
	for name := range fb {
		if _, ok := fa[name]; !ok {
			diff = append(diff, name+" only in "+b)
		}
	}
	return diff
}

func sameTree(t *testing.T, a, b string) {
	t.Helper()
	if diff := treeDiff(a, b); len(diff) > 0 {
		t.Errorf("%s and %s differ: %v", a, b, diff)
	}
}

func waitReady(t *testing.T, p *inferencetest.Process) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.URL("/ready"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 60 s:\n%s", p.Addr, p.Tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("%s: %v: %s", url, err, data)
	}
}

// RollbackPollEnv sets the servers' --registry-poll for the rollback test
// (default 1s, to keep make test fast); docs/performance.md has the figures
// for the shipped 10s.
const RollbackPollEnv = "LIFECYCLE_ROLLBACK_POLL"

// testRollbackUnderLoad: two ml-inference processes follow production under
// load; promote, then rollback; each time, how long until both answer with
// the new version, with no failed request.
func testRollbackUnderLoad(t *testing.T, c ctl) {
	poll := time.Second
	if v := os.Getenv(RollbackPollEnv); v != "" {
		var err error
		if poll, err = time.ParseDuration(v); err != nil {
			t.Fatalf("%s=%q: %v", RollbackPollEnv, v, err)
		}
	}
	c.ok("model", "register", "--from-dir", "models/v1")
	c.ok("model", "register", "--from-dir", "models/v2")
	c.ok("model", "promote", "1", "--alias", "production", "--actor", "ci", "--reason", "baseline")
	var procs []*inferencetest.Process
	for range 2 {
		p := inferencetest.Run(t, inferencetest.Options{Noise: `"msg":"request"`, Args: []string{"--model-source", "mlflow",
			"--mlflow-uri", c.uri, "--model-uri", "models:/" + c.model + "@production", "--model-cache-dir", t.TempDir(),
			"--registry-poll", poll.String()}})
		waitReady(t, p)
		procs = append(procs, p)
	}
	var loads []*inferencetest.Load
	for _, p := range procs {
		l := inferencetest.StartLoad(p, 2, 5*time.Millisecond)
		t.Cleanup(func() { l.Stop() })
		loads = append(loads, l)
	}
	time.Sleep(300 * time.Millisecond)

	// switchTime runs a command and returns how long the command took and
	// how long until both servers answered with version want.
	switchTime := func(want string, args ...string) (command, both time.Duration) {
		t.Helper()
		began := time.Now()
		c.ok(args...)
		command = time.Since(began)
		deadline := began.Add(poll + 60*time.Second)
		for _, l := range loads {
			for {
				at, ok := l.FirstServedBy(want, began)
				if ok {
					both = max(both, at.Sub(began))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: no answer from %s within %s", strings.Join(args, " "), want, time.Since(began))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		return command, both
	}
	promoteCmd, promoted := switchTime("v2", "model", "promote", "2", "--alias", "production", "--actor", "ci", "--reason", "measure a promotion")
	time.Sleep(300 * time.Millisecond)
	rollbackCmd, rolledBack := switchTime("v1", "model", "rollback", "--alias", "production", "--actor", "ci", "--reason", "measure a rollback")
	time.Sleep(300 * time.Millisecond)
	var sent, failed int64
	for i, l := range loads {
		res := l.Stop()
		sent += res.Sent
		failed += res.Failed
		if res.Failed > 0 {
			t.Errorf("server %d: %d of %d requests failed (first: %s)", i+1, res.Failed, res.Sent, res.FirstFailure)
		}
	}
	// The rollback found v1 in each server's cache: nothing downloaded.
	for i, p := range procs {
		if !regexp.MustCompile(`"msg":"model version fetched".*"version":"v1".*"from_cache":true`).MatchString(p.Logs()) {
			t.Errorf("server %d did not take the rollback's v1 from its cache:\n%s", i+1, p.Tail(10))
		}
	}
	line := fmt.Sprintf("ROLLBACK_TIMING poll=%s promote_command=%.2fs promote_both_serving=%.2fs rollback_command=%.2fs rollback_both_serving=%.2fs requests=%d failed=%d",
		poll, promoteCmd.Seconds(), promoted.Seconds(), rollbackCmd.Seconds(), rolledBack.Seconds(), sent, failed)
	t.Log(line)
	if rolledBack > 30*time.Second {
		t.Errorf("rollback took %s until both servers answered with v1; the target is 30 s", rolledBack.Round(time.Millisecond))
	}
	if sent == 0 {
		t.Error("no request was sent; the measurement proves nothing")
	}
}

// TestDefaultActor: git's user.email, else $USER.
func TestDefaultActor(t *testing.T) {
	t.Chdir(t.TempDir()) // outside any repository's local config
	cfg := filepath.Join(t.TempDir(), "gitconfig")
	os.WriteFile(cfg, []byte("[user]\n\temail = ana@example.com\n"), 0o644)
	t.Setenv("GIT_CONFIG_SYSTEM", os.DevNull)
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)
	getenv := func(k string) string { return map[string]string{"USER": "ana"}[k] }
	if got := defaultActor(context.Background(), getenv); got != "ana@example.com" {
		t.Errorf("with user.email: %q", got)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	if got := defaultActor(context.Background(), getenv); got != "ana" {
		t.Errorf("without user.email: %q, want $USER", got)
	}
}
