package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/ml-platform/platform/internal/mlflow"
)

// RunSpec is what one training, evaluation or registration run records.
type RunSpec struct {
	Experiment string // created if missing
	Name       string // "" lets MLflow pick one
	Params     mlflow.KeyValues
	Metrics    map[string]float64
	Tags       mlflow.KeyValues
	// ArtifactDir, if set, is uploaded below ArtifactPath ("model" by
	// default) of the run's artifacts.
	ArtifactDir  string
	ArtifactPath string
	// Files are more files for the run's artifact root: name -> content
	// (e.g. the artifact's manifest).
	Files map[string][]byte
}

// LogRun records spec as one finished run and returns it as MLflow has it
// (with its artifact URI). If a step fails after the run was created, the run
// is marked FAILED and the error names it. It is the one way platformctl logs
// runs: model register uses it, and so can training and evaluation.
func LogRun(ctx context.Context, c *mlflow.Client, spec RunSpec) (mlflow.Run, error) {
	if spec.Experiment == "" {
		return mlflow.Run{}, errors.New("log run: no experiment")
	}
	for k, v := range spec.Metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return mlflow.Run{}, fmt.Errorf("log run: metric %q is %v", k, v)
		}
	}
	exp, err := c.EnsureExperiment(ctx, spec.Experiment)
	if err != nil {
		return mlflow.Run{}, fmt.Errorf("log run: %w", err)
	}
	run, err := c.CreateRun(ctx, mlflow.CreateRunRequest{ExperimentID: exp, Name: spec.Name, Tags: spec.Tags})
	if err != nil {
		return mlflow.Run{}, fmt.Errorf("log run: %w", err)
	}
	fail := func(err error) (mlflow.Run, error) {
		// The caller's context may be what ended; the run must still be
		// marked, or it stays RUNNING for ever.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, uerr := c.UpdateRun(ctx, run.Info.ID, mlflow.RunFailed, time.Now()); uerr != nil {
			err = errors.Join(err, fmt.Errorf("mark the run FAILED: %w", uerr))
		}
		return mlflow.Run{}, fmt.Errorf("log run %s in experiment %q: %w", run.Info.ID, spec.Experiment, err)
	}
	keys := make([]string, 0, len(spec.Metrics))
	for k := range spec.Metrics {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	batch := mlflow.Batch{Params: spec.Params}
	for _, k := range keys {
		batch.Metrics = append(batch.Metrics, mlflow.Metric{Key: k, Value: spec.Metrics[k]})
	}
	if err := c.LogBatch(ctx, run.Info.ID, batch); err != nil {
		return fail(err)
	}
	if spec.ArtifactDir != "" {
		path := spec.ArtifactPath
		if path == "" {
			path = ArtifactPath
		}
		if err := c.UploadDir(ctx, run.Info.ArtifactURI, path, spec.ArtifactDir); err != nil {
			return fail(err)
		}
	}
	names := make([]string, 0, len(spec.Files))
	for name := range spec.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		data := spec.Files[name]
		if err := c.UploadArtifact(ctx, run.Info.ArtifactURI, name, bytes.NewReader(data), int64(len(data))); err != nil {
			return fail(err)
		}
	}
	if _, err := c.UpdateRun(ctx, run.Info.ID, mlflow.RunFinished, time.Now()); err != nil {
		return fail(err)
	}
	done, err := c.GetRun(ctx, run.Info.ID)
	if err != nil {
		return mlflow.Run{}, fmt.Errorf("log run %s: read it back: %w", run.Info.ID, err)
	}
	return done, nil
}
