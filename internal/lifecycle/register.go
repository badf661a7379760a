package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ml-platform/platform/internal/mlflow"
	"github.com/ml-platform/platform/internal/model"
)

// RegisterRequest says what to register.
type RegisterRequest struct {
	Artifact Artifact
	Revision Revision
	// RunID names a run that already holds the artifact below
	// ArtifactPath (one LogRun made); "" logs a new run in Experiment.
	RunID      string
	Experiment string
}

// Registered is the outcome of Register.
type Registered struct {
	Version mlflow.ModelVersion
	RunID   string
	// Existing: a version with the same digest was already registered, and
	// nothing was created.
	Existing bool
}

// registerWait bounds the wait for a new version to be READY.
const registerWait = 2 * time.Minute

// DownloadLimits bound every artifact download of the lifecycle (and of
// ml-inference): a registry entry must not fill a disk.
var DownloadLimits = mlflow.DownloadLimits{MaxFiles: 10_000, MaxBytes: 2 << 30}

// Register makes the artifact a version of the registered model, tagged with
// its digest, kind, own version name and git revision, and waits until it is
// READY. An artifact whose digest is already registered is not registered
// twice: the existing version is returned with Existing set. (Two registers
// racing on one digest can still both create one; MLflow has no unique
// constraint to lean on.)
func (r *Registry) Register(ctx context.Context, req RegisterRequest) (Registered, error) {
	a := req.Artifact
	same, err := r.versions(ctx, fmt.Sprintf("tags.%s = '%s'", TagDigest, a.Digest))
	if err != nil {
		return Registered{}, fmt.Errorf("register %s: look for the digest: %w", a.Dir, err)
	}
	if len(same) > 0 {
		oldest := same[len(same)-1]
		return Registered{Version: oldest, RunID: oldest.RunID, Existing: true}, nil
	}

	var run mlflow.Run
	if req.RunID != "" {
		if run, err = r.checkRun(ctx, req.RunID, a); err != nil {
			return Registered{}, err
		}
	} else {
		spec := a.RunSpec(req.Experiment, req.Revision)
		if run, err = LogRun(ctx, r.c, spec); err != nil {
			return Registered{}, fmt.Errorf("register %s: %w", a.Dir, r.reach(err))
		}
	}

	if _, err := r.c.CreateRegisteredModel(ctx, mlflow.CreateRegisteredModelRequest{
		Name:        r.model,
		Description: "Sentiment models served by ml-inference, which follows the staging and production aliases.",
	}); err != nil && !errors.Is(err, mlflow.ErrAlreadyExists) {
		return Registered{}, fmt.Errorf("register %s: %w", a.Dir, r.reach(err))
	}
	mv, err := r.c.CreateModelVersion(ctx, mlflow.CreateModelVersionRequest{
		Name:        r.model,
		Source:      run.Info.ArtifactURI + "/" + ArtifactPath,
		RunID:       run.Info.ID,
		Description: a.Meta.Description,
		Tags: mlflow.KeyValues{
			TagDigest:          a.Digest,
			TagKind:            a.Meta.Kind,
			TagArtifactVersion: a.Meta.Version,
			TagGitRevision:     req.Revision.Commit,
		},
	})
	if err != nil {
		return Registered{}, fmt.Errorf("register %s: %w", a.Dir, r.reach(err))
	}
	waitCtx, cancel := context.WithTimeout(ctx, registerWait)
	defer cancel()
	ready, err := r.c.WaitModelVersionReady(waitCtx, r.model, mv.Version)
	if err != nil {
		return Registered{}, fmt.Errorf("register %s: %w", a.Dir, r.reach(err))
	}
	return Registered{Version: ready, RunID: run.Info.ID}, nil
}

// checkRun returns the run runID if its artifact directory holds exactly the
// artifact (the same digest).
func (r *Registry) checkRun(ctx context.Context, runID string, a Artifact) (mlflow.Run, error) {
	run, err := r.c.GetRun(ctx, runID)
	if errors.Is(err, mlflow.ErrNotFound) {
		return mlflow.Run{}, fmt.Errorf("register %s: --run-id %s: no such run", a.Dir, runID)
	}
	if err != nil {
		return mlflow.Run{}, fmt.Errorf("register %s: %w", a.Dir, r.reach(err))
	}
	dir, err := os.MkdirTemp("", "platformctl-register-")
	if err != nil {
		return mlflow.Run{}, err
	}
	defer os.RemoveAll(dir)
	if _, _, err := r.c.DownloadDir(ctx, run.Info.ArtifactURI, ArtifactPath, dir, DownloadLimits); err != nil {
		return mlflow.Run{}, fmt.Errorf("register %s: run %s holds no artifact at %s/ (log it with lifecycle.LogRun): %w", a.Dir, runID, ArtifactPath, r.reach(err))
	}
	got, err := model.Digest(dir)
	if err != nil {
		return mlflow.Run{}, fmt.Errorf("register %s: run %s's %s/: %w", a.Dir, runID, ArtifactPath, err)
	}
	if got != a.Digest {
		return mlflow.Run{}, fmt.Errorf("register %s: run %s's %s/ has digest %s, but %s has %s: register the directory the run logged", a.Dir, runID, ArtifactPath, got, a.Dir, a.Digest)
	}
	return run, nil
}
