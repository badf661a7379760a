package lifecycle_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/lifecycle"
	"github.com/ml-platform/platform/internal/mlflow"
	"github.com/ml-platform/platform/internal/mlflowtest"
	"github.com/ml-platform/platform/internal/model"
)

var repoModels = filepath.Join("..", "..", "models")

func readArtifact(t *testing.T, dir string) lifecycle.Artifact {
	t.Helper()
	a, err := lifecycle.ReadArtifact(dir)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// copyArtifact copies models/<version> to a temporary directory.
func copyArtifact(t *testing.T, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), version)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repoModels, version))); err != nil {
		t.Fatal(err)
	}
	return dir
}

var rev = lifecycle.Revision{Commit: "0123456789abcdef0123456789abcdef01234567"}

// TestLifecycle runs the lifecycle against one real MLflow server; each
// subtest works on a registered model of its own.
func TestLifecycle(t *testing.T) {
	srv := mlflowtest.Start(t)
	c, err := mlflow.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	newRegistry := func(t *testing.T) *lifecycle.Registry {
		n++
		r, err := lifecycle.New(c, "sentiment-"+strconv.Itoa(n)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Run("register", func(t *testing.T) { testRegister(t, c, newRegistry(t)) })
	t.Run("register-from-run", func(t *testing.T) { testRegisterFromRun(t, c, newRegistry(t)) })
	t.Run("log-run-failure", func(t *testing.T) { testLogRunFailure(t, c) })
	t.Run("moves", func(t *testing.T) { testMoves(t, c, newRegistry(t)) })
	t.Run("unreachable", func(t *testing.T) { testUnreachable(t) })
}

func testRegister(t *testing.T, c *mlflow.Client, r *lifecycle.Registry) {
	ctx := t.Context()
	a := readArtifact(t, filepath.Join(repoModels, "v2"))
	reg, err := r.Register(ctx, lifecycle.RegisterRequest{Artifact: a, Revision: rev, Experiment: r.Model()})
	if err != nil {
		t.Fatal(err)
	}
	mv := reg.Version
	if reg.Existing || mv.Version != "1" || mv.Status != mlflow.VersionReady {
		t.Errorf("first register: %+v", reg)
	}
	wantTags := mlflow.KeyValues{lifecycle.TagDigest: a.Digest, lifecycle.TagKind: "rule-lexicon", lifecycle.TagArtifactVersion: "v2", lifecycle.TagGitRevision: rev.Commit}
	for k, v := range wantTags {
		if mv.Tags[k] != v {
			t.Errorf("version tag %s = %q, want %q", k, mv.Tags[k], v)
		}
	}
	run, err := c.GetRun(ctx, reg.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if mv.Source != run.Info.ArtifactURI+"/model" || mv.RunID != run.Info.ID || run.Info.Status != mlflow.RunFinished {
		t.Errorf("source %s, run %s %s (artifact URI %s)", mv.Source, mv.RunID, run.Info.Status, run.Info.ArtifactURI)
	}
	p := run.Data.Params
	if p["kind"] != "rule-lexicon" || p["artifact_digest"] != a.Digest || p["artifact_files"] != "LEXICON.md,lexicon.tsv,model.json" ||
		p["git_revision"] != rev.Commit || p["dataset_sha256"] != a.Meta.Metrics.DatasetSHA256 || p["git_dirty"] != "false" {
		t.Errorf("run params %v", p)
	}
	metrics, _ := lifecycle.RunMetrics(ctx, c, reg.RunID)
	if metrics["accuracy"] != a.Meta.Metrics.Accuracy || metrics["f1_score"] != a.Meta.Metrics.F1Score {
		t.Errorf("run metrics %v, want model.json's %+v", metrics, a.Meta.Metrics)
	}
	if run.Data.Tags["mlflow.source.git.commit"] != rev.Commit {
		t.Errorf("run tags %v", run.Data.Tags)
	}
	// What the registry holds is the directory, byte for byte, and the
	// manifest beside it checks it.
	dest := t.TempDir()
	if _, _, err := c.DownloadDir(ctx, mv.Source, "", dest, lifecycle.DownloadLimits); err != nil {
		t.Fatal(err)
	}
	if got, _ := model.Digest(dest); got != a.Digest {
		t.Errorf("downloaded digest %s, want %s", got, a.Digest)
	}
	var manifest strings.Builder
	if _, err := c.DownloadArtifact(ctx, run.Info.ArtifactURI, lifecycle.ManifestFile, &manifest); err != nil || manifest.String() != model.ManifestText(a.Manifest) {
		t.Errorf("manifest %q (%v)", manifest.String(), err)
	}

	// The same digest again: found, not duplicated, even from another path.
	again, err := r.Register(ctx, lifecycle.RegisterRequest{Artifact: readArtifact(t, copyArtifact(t, "v2")), Revision: rev, Experiment: r.Model()})
	if err != nil || !again.Existing || again.Version.Version != "1" {
		t.Errorf("second register of one digest: %+v, %v", again, err)
	}
	// A changed byte is a new version.
	dir := copyArtifact(t, "v2")
	f, _ := os.OpenFile(filepath.Join(dir, "LEXICON.md"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n")
	f.Close()
	changed, err := r.Register(ctx, lifecycle.RegisterRequest{Artifact: readArtifact(t, dir), Revision: rev, Experiment: r.Model()})
	if err != nil || changed.Existing || changed.Version.Version != "2" {
		t.Errorf("register of a changed artifact: %+v, %v", changed, err)
	}
	// An artifact this build cannot load is refused before anything is
	// written.
	broken := copyArtifact(t, "v1")
	os.WriteFile(filepath.Join(broken, "model.json"), []byte(`{"name":"x"}`), 0o644)
	if _, err := lifecycle.ReadArtifact(broken); err == nil || !strings.Contains(err.Error(), "model.json") {
		t.Errorf("a broken artifact: %v", err)
	}
}

func testRegisterFromRun(t *testing.T, c *mlflow.Client, r *lifecycle.Registry) {
	ctx := t.Context()
	a := readArtifact(t, filepath.Join(repoModels, "v1"))
	// A training run logs the artifact with LogRun, then registers it.
	run, err := lifecycle.LogRun(ctx, c, lifecycle.RunSpec{Experiment: r.Model() + "-training", Name: "train",
		Params: mlflow.KeyValues{"lr": "0.1"}, Metrics: map[string]float64{"loss": 0.25}, ArtifactDir: a.Dir})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := r.Register(ctx, lifecycle.RegisterRequest{Artifact: a, Revision: rev, RunID: run.Info.ID})
	if err != nil {
		t.Fatal(err)
	}
	if reg.RunID != run.Info.ID || reg.Version.RunID != run.Info.ID || reg.Version.Source != run.Info.ArtifactURI+"/model" {
		t.Errorf("registered from run %s: %+v", run.Info.ID, reg)
	}
	// A run whose artifact is another one, or that has none, is refused.
	other := readArtifact(t, filepath.Join(repoModels, "v2"))
	if _, err := r.Register(ctx, lifecycle.RegisterRequest{Artifact: other, Revision: rev, RunID: run.Info.ID}); err == nil || !strings.Contains(err.Error(), "has digest") {
		t.Errorf("a run holding another artifact: %v", err)
	}
	bare, err := lifecycle.LogRun(ctx, c, lifecycle.RunSpec{Experiment: r.Model() + "-training"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(ctx, lifecycle.RegisterRequest{Artifact: other, Revision: rev, RunID: bare.Info.ID}); err == nil || !strings.Contains(err.Error(), "holds no artifact") {
		t.Errorf("a run without an artifact: %v", err)
	}
	if _, err := r.Register(ctx, lifecycle.RegisterRequest{Artifact: other, Revision: rev, RunID: "0123456789abcdef0123456789abcdef"}); err == nil || !strings.Contains(err.Error(), "no such run") {
		t.Errorf("an unknown run: %v", err)
	}
}

// testLogRunFailure: a run whose upload fails is marked FAILED, not left
// RUNNING.
func testLogRunFailure(t *testing.T, c *mlflow.Client) {
	ctx := t.Context()
	dir := copyArtifact(t, "v1")
	os.Symlink("model.json", filepath.Join(dir, "link"))
	exp := "log-run-failure-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	_, err := lifecycle.LogRun(ctx, c, lifecycle.RunSpec{Experiment: exp, ArtifactDir: dir})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a tree with a symlink: %v", err)
	}
	e, err := c.GetExperimentByName(ctx, exp)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := c.SearchRuns(ctx, mlflow.SearchRunsRequest{ExperimentIDs: []string{e.ID}})
	if err != nil || len(runs.Runs) != 1 || runs.Runs[0].Info.Status != mlflow.RunFailed {
		t.Errorf("runs after a failed LogRun: %+v, %v; want one FAILED", runs.Runs, err)
	}
}

func testMoves(t *testing.T, c *mlflow.Client, r *lifecycle.Registry) {
	ctx := t.Context()
	req := func(alias, reason string) lifecycle.MoveRequest {
		return lifecycle.MoveRequest{Alias: alias, Actor: "ana@example.com", Reason: reason}
	}
	// Nothing registered yet.
	if _, err := r.Rollback(ctx, req("production", "r")); err == nil || !strings.Contains(err.Error(), "no registered model") {
		t.Errorf("rollback of an unknown model: %v", err)
	}
	for _, v := range []string{"v1", "v2"} {
		if _, err := r.Register(ctx, lifecycle.RegisterRequest{Artifact: readArtifact(t, filepath.Join(repoModels, v)), Revision: rev, Experiment: r.Model()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Rollback(ctx, req("production", "r")); !errors.Is(err, lifecycle.ErrNoPrevious) {
		t.Errorf("rollback of an unset alias: %v", err)
	}
	m1, err := r.Promote(ctx, "1", req("production", "first release"))
	if err != nil {
		t.Fatal(err)
	}
	if m1.From != "" || m1.To != "1" || m1.Status != mlflow.RunFinished || m1.At.IsZero() {
		t.Errorf("first promotion: %+v", m1)
	}
	if _, err := r.Rollback(ctx, req("production", "r")); !errors.Is(err, lifecycle.ErrNoPrevious) || !strings.Contains(err.Error(), "first it pointed at") {
		t.Errorf("rollback after the first promotion: %v", err)
	}
	if _, err := r.Promote(ctx, "1", req("production", "again")); !errors.Is(err, lifecycle.ErrNoChange) {
		t.Errorf("promotion to the current version: %v", err)
	}
	time.Sleep(5 * time.Millisecond)
	m2, err := r.Promote(ctx, "2", req("production", "v2 beats v1 on macro-F1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Promote(ctx, "2", req("staging", "try it")); err != nil {
		t.Fatal(err)
	}
	back, err := r.Rollback(ctx, req("production", "complaints"))
	if err != nil {
		t.Fatal(err)
	}
	if back.From != "2" || back.To != "1" || back.Action != lifecycle.ActionRollback {
		t.Errorf("rollback: %+v", back)
	}
	// A second rollback undoes the first.
	undo, err := r.Rollback(ctx, req("production", "false alarm"))
	if err != nil || undo.From != "1" || undo.To != "2" {
		t.Errorf("second rollback: %+v, %v", undo, err)
	}

	history, err := r.History(ctx, "production")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range history {
		got = append(got, m.Action+":"+m.From+">"+m.To+":"+m.Reason)
	}
	want := []string{"promote:>1:first release", "promote:1>2:v2 beats v1 on macro-F1", "rollback:2>1:complaints", "rollback:1>2:false alarm"}
	if !slices.Equal(got, want) {
		t.Errorf("production history %q\nwant %q", got, want)
	}
	all, _ := r.History(ctx, "")
	if len(all) != 5 {
		t.Errorf("history of every alias: %d moves, want 5", len(all))
	}
	for _, m := range all {
		if m.Actor != "ana@example.com" || m.Model != r.Model() || m.Status != mlflow.RunFinished {
			t.Errorf("move %+v", m)
		}
	}
	// Which version held production when.
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{m1.At.Add(-time.Millisecond), ""}, {m1.At, "1"}, {m2.At.Add(-time.Millisecond), "1"}, {m2.At, "2"},
		{back.At, "1"}, {undo.At, "2"}, {time.Now().Add(time.Hour), "2"},
	} {
		if got := lifecycle.HeldAt(history, "production", c.at); got != c.want {
			t.Errorf("HeldAt(%s) = %q, want %q", c.at.Format(time.RFC3339Nano), got, c.want)
		}
	}

	// Bad input.
	if _, err := r.Promote(ctx, "9", req("production", "r")); !errors.Is(err, lifecycle.ErrUnknownVersion) || !strings.Contains(err.Error(), "versions: 2, 1") {
		t.Errorf("unknown version: %v", err)
	}
	for _, bad := range []string{"0", "-1", "v2", "01", ""} {
		if _, err := r.Promote(ctx, bad, req("production", "r")); err == nil || !strings.Contains(err.Error(), "registry version number") {
			t.Errorf("version %q: %v", bad, err)
		}
	}
	if _, err := r.Promote(ctx, "1", req("prod", "r")); err == nil || !strings.Contains(err.Error(), `unknown alias "prod"`) {
		t.Errorf("unknown alias: %v", err)
	}
	if _, err := r.Promote(ctx, "1", lifecycle.MoveRequest{Alias: "production", Actor: "a"}); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Errorf("no reason: %v", err)
	}
	if _, err := r.History(ctx, "canary"); err == nil {
		t.Error("history of an unknown alias")
	}
	// A version registered by hand, without a digest, is refused.
	v1, err := c.GetModelVersion(ctx, r.Model(), "1")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := c.CreateModelVersion(ctx, mlflow.CreateModelVersionRequest{Name: r.Model(), Source: v1.Source, RunID: v1.RunID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Promote(ctx, plain.Version, req("production", "r")); err == nil || !strings.Contains(err.Error(), "no artifact_digest tag") {
		t.Errorf("a version without a digest: %v", err)
	}

	// Moved outside platformctl: rollback refuses, Drift says so.
	if err := c.SetAlias(ctx, r.Model(), "production", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rollback(ctx, req("production", "r")); err == nil || !strings.Contains(err.Error(), "moved outside platformctl") {
		t.Errorf("rollback after an outside move: %v", err)
	}
	all, _ = r.History(ctx, "")
	drift, err := r.Drift(ctx, all)
	if err != nil || len(drift) != 1 || !strings.Contains(drift[0], "production points at version 1") {
		t.Errorf("drift %q, %v", drift, err)
	}
}

// testUnreachable: with nothing listening, every call says MLflow is
// unreachable.
func testUnreachable(t *testing.T) {
	ctx := t.Context()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, _ := mlflow.New("http://"+addr, mlflow.WithTimeout(5*time.Second))
	r, _ := lifecycle.New(c, "sentiment-analyzer")
	a := readArtifact(t, filepath.Join(repoModels, "v1"))
	calls := map[string]func() error{
		"register": func() error {
			_, err := r.Register(ctx, lifecycle.RegisterRequest{Artifact: a, Revision: rev, Experiment: "e"})
			return err
		},
		"promote": func() error {
			_, err := r.Promote(ctx, "1", lifecycle.MoveRequest{Alias: "production", Actor: "a", Reason: "r"})
			return err
		},
		"rollback": func() error {
			_, err := r.Rollback(ctx, lifecycle.MoveRequest{Alias: "production", Actor: "a", Reason: "r"})
			return err
		},
		"history": func() error { _, err := r.History(ctx, ""); return err },
		"list":    func() error { _, err := r.List(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, lifecycle.ErrUnreachable) || !strings.Contains(err.Error(), addr) {
			t.Errorf("%s with MLflow down: %v, want ErrUnreachable naming %s", name, err, addr)
		}
	}
}

func TestParseModelURI(t *testing.T) {
	for in, want := range map[string]lifecycle.ModelURI{
		"models:/sentiment-analyzer@production": {Model: "sentiment-analyzer", Alias: "production"},
		"models:/sentiment-analyzer/12":         {Model: "sentiment-analyzer", Version: "12"},
	} {
		got, err := lifecycle.ParseModelURI(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseModelURI(%q) = %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "sentiment-analyzer@production", "models:/sentiment-analyzer", "models:/@production",
		"models:/m@", "models:/m/0", "models:/m/v1", "models:/m/1/2", "models:/a'b@production", "runs:/abc/model", "models:/m@a@b"} {
		if _, err := lifecycle.ParseModelURI(bad); err == nil {
			t.Errorf("ParseModelURI(%q) accepted", bad)
		}
	}
}
