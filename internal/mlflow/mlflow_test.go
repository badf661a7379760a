package mlflow_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/mlflow"
	"github.com/ml-platform/platform/internal/mlflowtest"
)

// TestAgainstMLflow runs every call of the client against one real MLflow
// server, in the order of the model lifecycle (experiment, run, artifacts,
// model, versions, aliases, webhooks), then reads it all back with MLflow's
// Python client, then takes the server down and brings it back. The subtests
// share what they wrote and run in order.
func TestAgainstMLflow(t *testing.T) {
	srv := mlflowtest.Start(t)
	firstStart := srv.StartedIn
	c, err := mlflow.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w := &written{model: "sentiment-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	// Here, not in the webhooks step: it must outlive it for the restart.
	w.hook = newHookListener(t)

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"experiments", func(t *testing.T) { testExperiments(ctx, t, c, w) }},
		{"runs", func(t *testing.T) { testRuns(ctx, t, c, w) }},
		{"log-batch-limits", func(t *testing.T) { testLogBatchLimits(ctx, t, c, w) }},
		{"artifacts", func(t *testing.T) { testArtifacts(ctx, t, c, w) }},
		{"dirs", func(t *testing.T) { testDirs(ctx, t, c, w) }},
		{"registered-models", func(t *testing.T) { testRegisteredModels(ctx, t, c, w) }},
		{"model-versions", func(t *testing.T) { testModelVersions(ctx, t, c, w) }},
		{"aliases", func(t *testing.T) { testAliases(ctx, t, c, w) }},
		{"webhooks", func(t *testing.T) { testWebhooks(ctx, t, c, w) }},
		{"readback", func(t *testing.T) { testReadback(ctx, t, srv, w) }},
		{"timeout", func(t *testing.T) { testTimeout(ctx, t, srv, w) }},
		{"server-down", func(t *testing.T) { testServerDown(ctx, t, srv, c, w) }},
		{"restart", func(t *testing.T) { testRestart(ctx, t, srv, c, w) }},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Fatalf("%s failed; the later steps build on it", s.name)
		}
	}
	srv.Stop()
	t.Logf("figures: server start %s, restart %s, graceful stop %s",
		firstStart.Round(time.Millisecond), srv.StartedIn.Round(time.Millisecond), srv.StoppedIn.Round(time.Millisecond))
}

// written is what the steps wrote, for later steps and the read-back.
type written struct {
	experimentID string
	run          mlflow.Run // as created, then finished
	params       mlflow.KeyValues
	metrics      map[string]float64
	runTags      mlflow.KeyValues
	weights      []byte // model/weights.bin
	model        string
	modelDesc    string
	modelTags    mlflow.KeyValues
	versions     []versionWritten
	aliases      map[string]string // alias -> version
	hook         *hookListener
}

type versionWritten struct {
	version, source, runID, description string
	tags                                mlflow.KeyValues
}

// wantAPIError checks err is an *APIError with status and MLflow code.
func wantAPIError(t *testing.T, what string, err error, kind error, status int, code string) {
	t.Helper()
	var api *mlflow.APIError
	if !errors.As(err, &api) {
		t.Errorf("%s: got %v (%T), want an *mlflow.APIError", what, err, err)
		return
	}
	if !errors.Is(err, kind) || api.StatusCode != status || api.Code != code || api.Message == "" {
		t.Errorf("%s: got %d %s %q (%v), want %d %s matching %v", what, api.StatusCode, api.Code, api.Message, err, status, code, kind)
	}
	if mlflow.IsRetryable(err) {
		t.Errorf("%s: %v is marked retryable", what, err)
	}
}

func testExperiments(ctx context.Context, t *testing.T, c *mlflow.Client, w *written) {
	name := w.model + "-training"
	_, err := c.GetExperimentByName(ctx, name)
	wantAPIError(t, "unknown experiment", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")

	id, err := c.EnsureExperiment(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.EnsureExperiment(ctx, name)
	if err != nil || again != id {
		t.Errorf("EnsureExperiment again = %q, %v; want %q", again, err, id)
	}
	exp, err := c.GetExperimentByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if exp.ID != id || exp.Name != name || exp.LifecycleStage != "active" || exp.ArtifactLocation != "mlflow-artifacts:/"+id || exp.CreationTime == 0 {
		t.Errorf("experiment = %+v", exp)
	}
	_, err = c.CreateExperiment(ctx, name, nil)
	wantAPIError(t, "duplicate experiment", err, mlflow.ErrAlreadyExists, 400, "RESOURCE_ALREADY_EXISTS")

	tagged, err := c.CreateExperiment(ctx, name+"-tagged", mlflow.KeyValues{"team": "ml"})
	if err != nil {
		t.Fatal(err)
	}
	exp, err = c.GetExperimentByName(ctx, name+"-tagged")
	if err != nil || exp.ID != tagged || exp.Tags["team"] != "ml" {
		t.Errorf("tagged experiment = %+v, %v", exp, err)
	}
	w.experimentID = id
}

func testRuns(ctx context.Context, t *testing.T, c *mlflow.Client, w *written) {
	start := time.UnixMilli(1_790_000_000_123)
	w.runTags = mlflow.KeyValues{"git_commit": "9de852d", "dataset": "seed-v1"}
	run, err := c.CreateRun(ctx, mlflow.CreateRunRequest{ExperimentID: w.experimentID, Name: "train-1", StartTime: start, Tags: mlflow.KeyValues{"git_commit": "9de852d"}})
	if err != nil {
		t.Fatal(err)
	}
	if run.Info.ID == "" || run.Info.Status != mlflow.RunRunning || run.Info.Name != "train-1" || run.Info.StartTime.Time() != start ||
		run.Info.ArtifactURI != "mlflow-artifacts:/"+w.experimentID+"/"+run.Info.ID+"/artifacts" {
		t.Errorf("created run = %+v", run.Info)
	}
	// A run without a start time gets now, not MLflow's 0.
	now, err := c.CreateRun(ctx, mlflow.CreateRunRequest{ExperimentID: w.experimentID})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(now.Info.StartTime.Time()); d < 0 || d > time.Minute || now.Info.Name == "" {
		t.Errorf("run without start time or name: %+v", now.Info)
	}

	w.params = mlflow.KeyValues{"lr": "0.1", "epochs": "5", "tokenizer": "whitespace"}
	w.metrics = map[string]float64{"accuracy": 0.875, "f1_score": 0.8625, "loss": 0.25}
	var metrics []mlflow.Metric
	for step, loss := range []float64{0.9, 0.6, 0.4} {
		metrics = append(metrics, mlflow.Metric{Key: "loss", Value: loss, Step: int64(step)})
	}
	metrics = append(metrics,
		mlflow.Metric{Key: "loss", Value: w.metrics["loss"], Step: 3, Timestamp: mlflow.Millis(start.Add(time.Hour))},
		mlflow.Metric{Key: "accuracy", Value: w.metrics["accuracy"], Step: 3},
		mlflow.Metric{Key: "f1_score", Value: w.metrics["f1_score"], Step: 3})
	err = c.LogBatch(ctx, run.Info.ID, mlflow.Batch{Params: w.params, Tags: mlflow.KeyValues{"dataset": "seed-v1"}, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	// The same param value again is fine; another value is refused.
	if err := c.LogBatch(ctx, run.Info.ID, mlflow.Batch{Params: mlflow.KeyValues{"lr": "0.1"}}); err != nil {
		t.Errorf("re-logging a param with its value: %v", err)
	}
	err = c.LogBatch(ctx, run.Info.ID, mlflow.Batch{Params: mlflow.KeyValues{"lr": "0.2"}})
	wantAPIError(t, "changing a param", err, mlflow.ErrInvalidArgument, 400, "INVALID_PARAMETER_VALUE")
	err = c.LogBatch(ctx, run.Info.ID, mlflow.Batch{Metrics: []mlflow.Metric{{Key: "loss", Value: math.NaN()}}})
	if !errors.Is(err, mlflow.ErrInvalidArgument) {
		t.Errorf("NaN metric: got %v, want ErrInvalidArgument before sending", err)
	}

	end := start.Add(90 * time.Minute)
	info, err := c.UpdateRun(ctx, run.Info.ID, mlflow.RunFinished, end)
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != mlflow.RunFinished || info.EndTime.Time() != end {
		t.Errorf("updated run = %+v", info)
	}
	if _, err := c.UpdateRun(ctx, run.Info.ID, "DONE", end); !errors.Is(err, mlflow.ErrInvalidArgument) {
		t.Errorf("unknown status: got %v, want ErrInvalidArgument (MLflow itself would ignore it)", err)
	}

	got, err := c.GetRun(ctx, run.Info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Info.Status != mlflow.RunFinished || got.Info.StartTime.Time() != start || got.Info.EndTime.Time() != end {
		t.Errorf("run info = %+v", got.Info)
	}
	if !maps.Equal(got.Data.Params, w.params) {
		t.Errorf("params = %v, want %v", got.Data.Params, w.params)
	}
	for k, v := range w.runTags {
		if got.Data.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q (tags %v)", k, got.Data.Tags[k], v, got.Data.Tags)
		}
	}
	if got.Data.Tags["mlflow.runName"] != "train-1" {
		t.Errorf("mlflow.runName = %q", got.Data.Tags["mlflow.runName"])
	}
	latest := map[string]mlflow.Metric{}
	for _, m := range got.Data.Metrics {
		latest[m.Key] = m
	}
	for k, v := range w.metrics {
		if latest[k].Value != v || latest[k].Step != 3 {
			t.Errorf("latest %s = %+v, want %v at step 3", k, latest[k], v)
		}
	}
	if latest["loss"].Timestamp.Time() != start.Add(time.Hour) {
		t.Errorf("loss timestamp %v, want %v", latest["loss"].Timestamp.Time(), start.Add(time.Hour))
	}

	page, err := c.SearchRuns(ctx, mlflow.SearchRunsRequest{ExperimentIDs: []string{w.experimentID}, Filter: `params.lr = "0.1" and metrics.accuracy > 0.8`, OrderBy: []string{"start_time DESC"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Runs) != 1 || page.Runs[0].Info.ID != run.Info.ID {
		t.Errorf("search by param and metric: %d runs %v, want %s", len(page.Runs), runIDs(page.Runs), run.Info.ID)
	}
	// Paging: two runs, one per page.
	p1, err := c.SearchRuns(ctx, mlflow.SearchRunsRequest{ExperimentIDs: []string{w.experimentID}, MaxResults: 1})
	if err != nil || len(p1.Runs) != 1 || p1.NextPageToken == "" {
		t.Fatalf("first page: %v, %v", p1, err)
	}
	p2, err := c.SearchRuns(ctx, mlflow.SearchRunsRequest{ExperimentIDs: []string{w.experimentID}, MaxResults: 1, PageToken: p1.NextPageToken})
	if err != nil || len(p2.Runs) != 1 || p2.Runs[0].Info.ID == p1.Runs[0].Info.ID {
		t.Errorf("second page: %v, %v", p2, err)
	}
	_, err = c.SearchRuns(ctx, mlflow.SearchRunsRequest{ExperimentIDs: []string{w.experimentID}, Filter: "params.lr ==== 1"})
	wantAPIError(t, "bad filter", err, mlflow.ErrInvalidArgument, 400, "INVALID_PARAMETER_VALUE")

	_, err = c.GetRun(ctx, "0123456789abcdef0123456789abcdef")
	wantAPIError(t, "unknown run", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
	err = c.LogBatch(ctx, "no-such-run", mlflow.Batch{Params: mlflow.KeyValues{"a": "b"}})
	wantAPIError(t, "log to an unknown run", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
	_, err = c.CreateRun(ctx, mlflow.CreateRunRequest{ExperimentID: "999999"})
	wantAPIError(t, "run in an unknown experiment", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
	w.run = got
}

// A batch over MLflow's per-request limits (100 params, 100 tags, 1000
// metrics, 1000 entities) is split so that the server takes all of it.
func testLogBatchLimits(ctx context.Context, t *testing.T, c *mlflow.Client, w *written) {
	run, err := c.CreateRun(ctx, mlflow.CreateRunRequest{ExperimentID: w.experimentID, Name: "big-batch"})
	if err != nil {
		t.Fatal(err)
	}
	b := mlflow.Batch{Params: mlflow.KeyValues{}, Tags: mlflow.KeyValues{}}
	for i := range 250 {
		b.Params[fmt.Sprintf("p%03d", i)] = strconv.Itoa(i)
	}
	for i := range 150 {
		b.Tags[fmt.Sprintf("t%03d", i)] = strconv.Itoa(i)
	}
	for i := range 1200 {
		b.Metrics = append(b.Metrics, mlflow.Metric{Key: fmt.Sprintf("m%04d", i), Value: float64(i)})
	}
	if err := c.LogBatch(ctx, run.Info.ID, b); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRun(ctx, run.Info.ID)
	if err != nil {
		t.Fatal(err)
	}
	tags := 0
	for k := range got.Data.Tags {
		if k[0] == 't' {
			tags++
		}
	}
	if len(got.Data.Params) != 250 || tags != 150 || len(got.Data.Metrics) != 1200 {
		t.Errorf("logged %d params, %d tags, %d metrics; want 250, 150, 1200", len(got.Data.Params), tags, len(got.Data.Metrics))
	}
}

func testArtifacts(ctx context.Context, t *testing.T, c *mlflow.Client, w *written) {
	root := w.run.Info.ArtifactURI
	w.weights = make([]byte, 3<<20+17)
	if _, err := rand.Read(w.weights); err != nil {
		t.Fatal(err)
	}
	// Streamed with an unknown length (chunked) and from a file.
	if err := c.UploadArtifact(ctx, root, "model/weights.bin", io.MultiReader(bytes.NewReader(w.weights)), -1); err != nil {
		t.Fatal(err)
	}
	manifest := []byte(`{"name":"sentiment","version":"v3"}` + "\n")
	local := filepath.Join(t.TempDir(), "model.json")
	if err := os.WriteFile(local, manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.UploadFile(ctx, root, "model/model.json", local); err != nil {
		t.Fatal(err)
	}
	if err := c.UploadArtifact(ctx, root, "notes/empty file.txt", bytes.NewReader(nil), 0); err != nil {
		t.Fatal(err)
	}

	top, err := c.ListArtifacts(ctx, root, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []mlflow.FileInfo{{Path: "model", IsDir: true}, {Path: "notes", IsDir: true}}
	if !slices.Equal(top, want) {
		t.Errorf("list root = %+v, want %+v", top, want)
	}
	files, err := c.ListArtifacts(ctx, root, "model")
	if err != nil {
		t.Fatal(err)
	}
	want = []mlflow.FileInfo{{Path: "model/model.json", FileSize: int64(len(manifest))}, {Path: "model/weights.bin", FileSize: int64(len(w.weights))}}
	if !slices.Equal(files, want) {
		t.Errorf("list model = %+v, want %+v", files, want)
	}
	if none, err := c.ListArtifacts(ctx, root, "missing"); err != nil || len(none) != 0 {
		t.Errorf("list a missing directory = %v, %v; want empty", none, err)
	}

	var buf bytes.Buffer
	n, err := c.DownloadArtifact(ctx, root, "model/weights.bin", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(w.weights)) || sha256.Sum256(buf.Bytes()) != sha256.Sum256(w.weights) {
		t.Errorf("downloaded %d bytes, sha256 %x; want %d bytes, %x", n, sha256.Sum256(buf.Bytes()), len(w.weights), sha256.Sum256(w.weights))
	}
	buf.Reset()
	if n, err := c.DownloadArtifact(ctx, root, "notes/empty file.txt", &buf); err != nil || n != 0 {
		t.Errorf("empty file: %d bytes, %v", n, err)
	}
	_, err = c.DownloadArtifact(ctx, root, "model/missing.bin", io.Discard)
	wantAPIError(t, "missing artifact", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
	if _, err := c.DownloadArtifact(ctx, root, "../../../etc/passwd", io.Discard); !errors.Is(err, mlflow.ErrInvalidArgument) {
		t.Errorf("path out of the root: got %v, want ErrInvalidArgument", err)
	}
	if err := c.UploadArtifact(ctx, "s3://bucket/x", "a", bytes.NewReader(nil), 0); !errors.Is(err, mlflow.ErrInvalidArgument) {
		t.Errorf("s3 URI: got %v, want ErrInvalidArgument", err)
	}
}

func testRegisteredModels(ctx context.Context, t *testing.T, c *mlflow.Client, w *written) {
	w.modelDesc = "sentiment classifier"
	w.modelTags = mlflow.KeyValues{"team": "ml-platform", "task": "sentiment"}
	m, err := c.CreateRegisteredModel(ctx, mlflow.CreateRegisteredModelRequest{Name: w.model, Description: w.modelDesc, Tags: mlflow.KeyValues{"team": "ml-platform"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != w.model || m.Description != w.modelDesc || m.Tags["team"] != "ml-platform" || m.CreationTimestamp == 0 {
		t.Errorf("created model = %+v", m)
	}
	_, err = c.CreateRegisteredModel(ctx, mlflow.CreateRegisteredModelRequest{Name: w.model})
	wantAPIError(t, "duplicate model", err, mlflow.ErrAlreadyExists, 400, "RESOURCE_ALREADY_EXISTS")
	if err := c.SetRegisteredModelTag(ctx, w.model, "task", "sentiment"); err != nil {
		t.Fatal(err)
	}
	m, err = c.GetRegisteredModel(ctx, w.model)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(m.Tags, w.modelTags) {
		t.Errorf("model tags = %v, want %v", m.Tags, w.modelTags)
	}
	if _, err := c.CreateRegisteredModel(ctx, mlflow.CreateRegisteredModelRequest{Name: w.model + "-other"}); err != nil {
		t.Fatal(err)
	}
	page, err := c.SearchRegisteredModels(ctx, mlflow.SearchRequest{Filter: fmt.Sprintf("name = '%s'", w.model)})
	if err != nil || len(page.Models) != 1 || page.Models[0].Name != w.model {
		t.Errorf("search by name = %+v, %v", page, err)
	}
	page, err = c.SearchRegisteredModels(ctx, mlflow.SearchRequest{Filter: fmt.Sprintf("name LIKE '%s%%'", w.model), OrderBy: []string{"name DESC"}, MaxResults: 1})
	if err != nil || len(page.Models) != 1 || page.Models[0].Name != w.model+"-other" || page.NextPageToken == "" {
		t.Errorf("search LIKE, newest name first, one per page = %+v, %v", page, err)
	}
	page, err = c.SearchRegisteredModels(ctx, mlflow.SearchRequest{Filter: "tags.task = 'sentiment'"})
	if err != nil || len(page.Models) != 1 {
		t.Errorf("search by tag = %+v, %v", page, err)
	}
	_, err = c.GetRegisteredModel(ctx, "no-such-model")
	wantAPIError(t, "unknown model", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
	err = c.SetRegisteredModelTag(ctx, "no-such-model", "a", "b")
	wantAPIError(t, "tag an unknown model", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
}

func testModelVersions(ctx context.Context, t *testing.T, c *mlflow.Client, w *written) {
	source := w.run.Info.ArtifactURI + "/model"
	for i, tags := range []mlflow.KeyValues{{"evaluated": "true"}, {"evaluated": "true", "candidate": "yes"}} {
		mv, err := c.CreateModelVersion(ctx, mlflow.CreateModelVersionRequest{Name: w.model, Source: source, RunID: w.run.Info.ID, Description: fmt.Sprintf("version %d", i+1), Tags: tags})
		if err != nil {
			t.Fatal(err)
		}
		if mv.Version != strconv.Itoa(i+1) || mv.Source != source || mv.RunID != w.run.Info.ID || !maps.Equal(mv.Tags, tags) {
			t.Errorf("created version = %+v", mv)
		}
		ready, err := c.WaitModelVersionReady(ctx, w.model, mv.Version)
		if err != nil {
			t.Fatal(err)
		}
		if ready.Status != mlflow.VersionReady {
			t.Errorf("version %s status %s", mv.Version, ready.Status)
		}
		w.versions = append(w.versions, versionWritten{version: mv.Version, source: source, runID: w.run.Info.ID, description: mv.Description, tags: tags})
	}
	if err := c.SetModelVersionTag(ctx, w.model, "2", "candidate", "approved"); err != nil {
		t.Fatal(err)
	}
	w.versions[1].tags["candidate"] = "approved"
	mv, err := c.GetModelVersion(ctx, w.model, "2")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(mv.Tags, w.versions[1].tags) || mv.Description != "version 2" {
		t.Errorf("version 2 = %+v", mv)
	}
	page, err := c.SearchModelVersions(ctx, mlflow.SearchRequest{Filter: fmt.Sprintf("name = '%s'", w.model), OrderBy: []string{"version_number DESC"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Versions) != 2 || page.Versions[0].Version != "2" || page.Versions[1].Version != "1" {
		t.Errorf("search versions = %+v", page.Versions)
	}
	page, err = c.SearchModelVersions(ctx, mlflow.SearchRequest{Filter: fmt.Sprintf("run_id = '%s'", w.run.Info.ID)})
	if err != nil || len(page.Versions) != 2 {
		t.Errorf("search versions by run = %+v, %v", page, err)
	}
	// The version's source is where its files are.
	var buf bytes.Buffer
	if _, err := c.DownloadArtifact(ctx, mv.Source, "weights.bin", &buf); err != nil || !bytes.Equal(buf.Bytes(), w.weights) {
		t.Errorf("download through the version's source: %d bytes, %v", buf.Len(), err)
	}

	_, err = c.CreateModelVersion(ctx, mlflow.CreateModelVersionRequest{Name: w.model, Source: source, RunID: "0123456789abcdef0123456789abcdef"})
	wantAPIError(t, "version from a source outside its run", err, mlflow.ErrInvalidArgument, 400, "INVALID_PARAMETER_VALUE")
	_, err = c.CreateModelVersion(ctx, mlflow.CreateModelVersionRequest{Name: "no-such-model", Source: source, RunID: w.run.Info.ID})
	wantAPIError(t, "version of an unknown model", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
	_, err = c.GetModelVersion(ctx, w.model, "99")
	wantAPIError(t, "unknown version", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
	_, err = c.GetModelVersion(ctx, w.model, "two")
	wantAPIError(t, "non-numeric version", err, mlflow.ErrInvalidArgument, 400, "INVALID_PARAMETER_VALUE")
	_, err = c.WaitModelVersionReady(ctx, w.model, "99")
	wantAPIError(t, "wait for an unknown version", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
}

func testAliases(ctx context.Context, t *testing.T, c *mlflow.Client, w *written) {
	if err := c.SetAlias(ctx, w.model, "production", "1"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAlias(ctx, w.model, "staging", "2"); err != nil {
		t.Fatal(err)
	}
	mv, err := c.GetModelVersionByAlias(ctx, w.model, "production")
	if err != nil || mv.Version != "1" || !slices.Equal(mv.Aliases, []string{"production"}) {
		t.Errorf("production -> %+v, %v; want version 1", mv, err)
	}
	// Promote: move production to 2; then roll back: move it to 1 again.
	for _, v := range []string{"2", "1", "2"} {
		if err := c.SetAlias(ctx, w.model, "production", v); err != nil {
			t.Fatal(err)
		}
		if mv, err := c.GetModelVersionByAlias(ctx, w.model, "production"); err != nil || mv.Version != v {
			t.Errorf("production -> %+v, %v; want version %s", mv, err, v)
		}
	}
	if err := c.SetAlias(ctx, w.model, "canary", "1"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAlias(ctx, w.model, "canary"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAlias(ctx, w.model, "canary"); err != nil {
		t.Errorf("deleting a deleted alias: %v (MLflow accepts it)", err)
	}
	m, err := c.GetRegisteredModel(ctx, w.model)
	if err != nil {
		t.Fatal(err)
	}
	w.aliases = map[string]string{"production": "2", "staging": "2"}
	for a, v := range w.aliases {
		if got, ok := m.AliasVersion(a); !ok || got != v {
			t.Errorf("model alias %s -> %q, %v; want %s (aliases %+v)", a, got, ok, v, m.Aliases)
		}
	}
	if _, ok := m.AliasVersion("canary"); ok || len(m.Aliases) != 2 {
		t.Errorf("aliases after deleting canary: %+v", m.Aliases)
	}
	mv, err = c.GetModelVersion(ctx, w.model, "2")
	if err != nil || !slices.Equal(mv.Aliases, []string{"production", "staging"}) {
		t.Errorf("version 2 aliases = %v, %v; want production, staging", mv.Aliases, err)
	}
	// As SearchModelVersions documents: search results carry no aliases. If
	// this fails, MLflow started filling them in; update the doc comment.
	page, err := c.SearchModelVersions(ctx, mlflow.SearchRequest{Filter: fmt.Sprintf("name = '%s'", w.model)})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range page.Versions {
		if len(v.Aliases) != 0 {
			t.Errorf("search result version %s has aliases %v", v.Version, v.Aliases)
		}
	}

	// MLflow answers an unknown alias with 400 INVALID_PARAMETER_VALUE; the
	// client reports it as not found.
	_, err = c.GetModelVersionByAlias(ctx, w.model, "canary")
	var api *mlflow.APIError
	if !errors.Is(err, mlflow.ErrNotFound) || errors.Is(err, mlflow.ErrInvalidArgument) || !errors.As(err, &api) || api.StatusCode != 400 {
		t.Errorf("unknown alias: got %v, want ErrNotFound (from MLflow's 400)", err)
	}
	_, err = c.GetModelVersionByAlias(ctx, "no-such-model", "production")
	wantAPIError(t, "alias of an unknown model", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
	err = c.SetAlias(ctx, w.model, "production", "99")
	wantAPIError(t, "alias to an unknown version", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
	err = c.SetAlias(ctx, "no-such-model", "production", "1")
	wantAPIError(t, "alias on an unknown model", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
	err = c.SetAlias(ctx, w.model, "latest", "1")
	wantAPIError(t, "the reserved alias latest", err, mlflow.ErrInvalidArgument, 400, "INVALID_PARAMETER_VALUE")
	err = c.DeleteAlias(ctx, "no-such-model", "production")
	wantAPIError(t, "delete an alias of an unknown model", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
}

// hookListener is a local HTTP server that records webhook deliveries.
type hookListener struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []delivery
	notify chan struct{}
}

type delivery struct {
	header http.Header
	body   []byte
}

func newHookListener(t *testing.T) *hookListener {
	h := &hookListener{notify: make(chan struct{}, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.got = append(h.got, delivery{r.Header.Clone(), body})
		h.mu.Unlock()
		h.notify <- struct{}{}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// next waits for the next delivery.
func (h *hookListener) next(t *testing.T, d time.Duration) delivery {
	t.Helper()
	select {
	case <-h.notify:
	case <-time.After(d):
		t.Fatalf("no webhook delivery within %s", d)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.got[0]
	h.got = h.got[1:]
	return out
}

// verify checks a delivery the way a listener would, through ReadWebhook.
func verify(t *testing.T, d delivery, secret string) (mlflow.WebhookDelivery, error) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(d.body))
	req.Header = d.header
	return mlflow.ReadWebhook(req, secret, time.Now(), 5*time.Minute)
}

const hookSecret = "whsec-for-the-test"

func testWebhooks(ctx context.Context, t *testing.T, c *mlflow.Client, w *written) {
	_, err := c.CreateWebhook(ctx, mlflow.CreateWebhookRequest{Name: "lower", URL: w.hook.srv.URL, Events: []mlflow.WebhookEvent{{Entity: "model_version_alias", Action: "created"}}})
	if !errors.Is(err, mlflow.ErrInvalidArgument) {
		t.Errorf("lower-case event: got %v, want ErrInvalidArgument before sending", err)
	}
	hook, err := c.CreateWebhook(ctx, mlflow.CreateWebhookRequest{
		Name: "alias-follower", URL: w.hook.srv.URL + "/hook", Description: "ml-inference reloads on alias moves",
		Events: []mlflow.WebhookEvent{mlflow.EventAliasCreated, mlflow.EventAliasDeleted}, Secret: hookSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	if hook.ID == "" || hook.Status != mlflow.WebhookActive || !slices.Equal(hook.Events, []mlflow.WebhookEvent{mlflow.EventAliasCreated, mlflow.EventAliasDeleted}) {
		t.Errorf("created webhook = %+v", hook)
	}
	other, err := c.CreateWebhook(ctx, mlflow.CreateWebhookRequest{Name: "to-delete", URL: w.hook.srv.URL + "/other", Events: []mlflow.WebhookEvent{mlflow.EventModelVersionCreated}, Status: mlflow.WebhookDisabled})
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.ListWebhooks(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range page.Webhooks {
		ids = append(ids, h.ID)
	}
	if !slices.Contains(ids, hook.ID) || !slices.Contains(ids, other.ID) {
		t.Errorf("list webhooks = %v, want %s and %s", ids, hook.ID, other.ID)
	}
	if got, err := c.GetWebhook(ctx, hook.ID); err != nil || got.URL != hook.URL || got.Description != hook.Description {
		t.Errorf("get webhook = %+v, %v", got, err)
	}

	// A test delivery, then the real events: an alias set, moved, deleted.
	event := mlflow.EventAliasCreated
	res, err := c.TestWebhook(ctx, hook.ID, &event)
	if err != nil || !res.Success || res.ResponseStatus != 200 {
		t.Errorf("test webhook = %+v, %v", res, err)
	}
	if d, err := verify(t, w.hook.next(t, 30*time.Second), hookSecret); err != nil || d.Event() != mlflow.EventAliasCreated {
		t.Errorf("test delivery: %+v, %v", d, err)
	}
	began := time.Now()
	if err := c.SetAlias(ctx, w.model, "shadow", "1"); err != nil {
		t.Fatal(err)
	}
	wantAliasEvent(t, w.hook.next(t, 30*time.Second), mlflow.EventAliasCreated, mlflow.AliasEventData{Name: w.model, Alias: "shadow", Version: "1"})
	t.Logf("figures: alias set -> signed delivery verified in %s", time.Since(began).Round(time.Millisecond))
	if err := c.SetAlias(ctx, w.model, "shadow", "2"); err != nil {
		t.Fatal(err)
	}
	wantAliasEvent(t, w.hook.next(t, 30*time.Second), mlflow.EventAliasCreated, mlflow.AliasEventData{Name: w.model, Alias: "shadow", Version: "2"})
	if err := c.DeleteAlias(ctx, w.model, "shadow"); err != nil {
		t.Fatal(err)
	}
	d := w.hook.next(t, 30*time.Second)
	wantAliasEvent(t, d, mlflow.EventAliasDeleted, mlflow.AliasEventData{Name: w.model, Alias: "shadow"})
	// The same real delivery fails with another secret or a flipped byte.
	if _, err := verify(t, d, "not-the-secret"); !errors.Is(err, mlflow.ErrWebhookUnverified) {
		t.Errorf("a real delivery with the wrong secret: got %v, want ErrWebhookUnverified", err)
	}
	tampered := delivery{d.header, bytes.Replace(d.body, []byte("shadow"), []byte("shadoW"), 1)}
	if _, err := verify(t, tampered, hookSecret); !errors.Is(err, mlflow.ErrWebhookUnverified) {
		t.Errorf("a tampered real delivery: got %v, want ErrWebhookUnverified", err)
	}

	if err := c.DeleteWebhook(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetWebhook(ctx, other.ID)
	wantAPIError(t, "deleted webhook", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
	err = c.DeleteWebhook(ctx, other.ID)
	wantAPIError(t, "delete a deleted webhook", err, mlflow.ErrNotFound, 404, "RESOURCE_DOES_NOT_EXIST")
}

func wantAliasEvent(t *testing.T, d delivery, event mlflow.WebhookEvent, want mlflow.AliasEventData) {
	t.Helper()
	got, err := verify(t, d, hookSecret)
	if err != nil {
		t.Fatalf("delivery %s: %v", d.body, err)
	}
	var data mlflow.AliasEventData
	if err := json.Unmarshal(got.Data, &data); err != nil {
		t.Fatal(err)
	}
	if got.Event() != event || data != want || got.ID == "" {
		t.Errorf("delivery %s %+v (id %q), want %s %+v", got.Event(), data, got.ID, event, want)
	}
}

// testTimeout: a per-call timeout that passes is a retryable transport
// error, not a hang.
func testTimeout(ctx context.Context, t *testing.T, srv *mlflowtest.Server, w *written) {
	impatient, err := mlflow.New(srv.URL, mlflow.WithTimeout(time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = impatient.GetRegisteredModel(ctx, w.model)
	var transport *mlflow.TransportError
	if !errors.As(err, &transport) || !errors.Is(err, context.DeadlineExceeded) || !mlflow.IsRetryable(err) {
		t.Errorf("1µs timeout: got %v, want a retryable *TransportError with context.DeadlineExceeded", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = impatient.GetRegisteredModel(canceled, w.model)
	if !errors.Is(err, context.Canceled) || mlflow.IsRetryable(err) {
		t.Errorf("canceled context: got %v, want context.Canceled, not retryable", err)
	}
}

// testServerDown: the server killed in the middle of a download, then
// every kind of call against no server: clear, retryable errors.
func testServerDown(ctx context.Context, t *testing.T, srv *mlflowtest.Server, c *mlflow.Client, w *written) {
	// 32 MiB: more than the loopback socket buffers hold, so most of it is
	// still on the server when it dies.
	big := make([]byte, 32<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := c.UploadArtifact(ctx, w.run.Info.ArtifactURI, "big.bin", bytes.NewReader(big), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	blocked := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := c.DownloadArtifact(ctx, w.run.Info.ArtifactURI, "big.bin", blocked)
		done <- result{n, err}
	}()
	select {
	case <-blocked.started:
	case r := <-done:
		t.Fatalf("download ended before its first write: %d bytes, %v", r.n, r.err)
	}
	srv.Kill()
	close(blocked.release)
	r := <-done
	var transport *mlflow.TransportError
	if r.err == nil || !errors.As(r.err, &transport) || !mlflow.IsRetryable(r.err) || r.n >= int64(len(big)) {
		t.Errorf("download cut by a SIGKILL: %d of %d bytes, %v; want a retryable *TransportError", r.n, len(big), r.err)
	}
	t.Logf("download cut after %d of %d bytes: %v", r.n, len(big), r.err)

	calls := map[string]func() error{
		"get model": func() error { _, err := c.GetRegisteredModel(ctx, w.model); return err },
		"by alias":  func() error { _, err := c.GetModelVersionByAlias(ctx, w.model, "production"); return err },
		"set alias": func() error { return c.SetAlias(ctx, w.model, "production", "1") },
		"log batch": func() error { return c.LogBatch(ctx, w.run.Info.ID, mlflow.Batch{Tags: mlflow.KeyValues{"a": "b"}}) },
		"download": func() error {
			_, err := c.DownloadArtifact(ctx, w.run.Info.ArtifactURI, "model/weights.bin", io.Discard)
			return err
		},
		"upload": func() error {
			return c.UploadArtifact(ctx, w.run.Info.ArtifactURI, "x", bytes.NewReader([]byte("x")), 1)
		},
		"list":       func() error { _, err := c.ListArtifacts(ctx, w.run.Info.ArtifactURI, ""); return err },
		"webhooks":   func() error { _, err := c.ListWebhooks(ctx, 0, ""); return err },
		"experiment": func() error { _, err := c.EnsureExperiment(ctx, "x"); return err },
	}
	for name, call := range calls {
		err := call()
		var transport *mlflow.TransportError
		if !errors.As(err, &transport) || !errors.Is(err, syscall.ECONNREFUSED) || !mlflow.IsRetryable(err) {
			t.Errorf("%s with the server down: got %v, want a retryable *TransportError (connection refused)", name, err)
		}
	}
	t.Logf("server down, e.g.: %v", calls["by alias"]())

	// Waiting through an outage ends with the caller's deadline and says
	// what it last saw.
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err := c.WaitModelVersionReady(short, w.model, "2")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("wait with the server down: got %v, want the deadline and the last error", err)
	}
}

// blockingWriter holds the first write until release is closed.
type blockingWriter struct {
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.started); <-b.release })
	return len(p), nil
}

// testRestart: after the crash, MLflow comes back on the same port and data;
// the client needs nothing new, and webhook secrets still sign.
func testRestart(ctx context.Context, t *testing.T, srv *mlflowtest.Server, c *mlflow.Client, w *written) {
	srv.Restart()
	t.Logf("figures: restart after SIGKILL %s", srv.StartedIn.Round(time.Millisecond))
	mv, err := c.GetModelVersionByAlias(ctx, w.model, "production")
	if err != nil || mv.Version != w.aliases["production"] {
		t.Fatalf("production after restart -> %+v, %v", mv, err)
	}
	var buf bytes.Buffer
	if _, err := c.DownloadArtifact(ctx, mv.Source, "weights.bin", &buf); err != nil || !bytes.Equal(buf.Bytes(), w.weights) {
		t.Errorf("weights after restart: %d bytes, %v", buf.Len(), err)
	}
	// The webhook's secret was stored encrypted before the crash; a fresh
	// process must still read it to sign.
	if err := c.SetAlias(ctx, w.model, "shadow", "1"); err != nil {
		t.Fatal(err)
	}
	wantAliasEvent(t, w.hook.next(t, 30*time.Second), mlflow.EventAliasCreated, mlflow.AliasEventData{Name: w.model, Alias: "shadow", Version: "1"})
	if err := c.DeleteAlias(ctx, w.model, "shadow"); err != nil {
		t.Fatal(err)
	}
	w.hook.next(t, 30*time.Second)
}

func runIDs(runs []mlflow.Run) []string {
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.Info.ID)
	}
	return ids
}
