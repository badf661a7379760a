package lifecycle

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/ml-platform/platform/internal/mlflow"
	"github.com/ml-platform/platform/internal/model"
)

// Artifact is an artifact directory as the lifecycle registers it: its
// metadata, its files and their digest. ReadArtifact also loads the model,
// so an artifact this build cannot serve is never registered.
type Artifact struct {
	Dir      string
	Meta     model.Metadata
	Manifest []model.ManifestEntry
	Digest   string
}

// ReadArtifact reads, loads and digests the artifact directory dir.
func ReadArtifact(dir string) (Artifact, error) {
	v, err := model.LoadArtifact(dir)
	if err != nil {
		return Artifact{}, err
	}
	manifest, err := model.Manifest(dir)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Dir: dir, Meta: v.Meta, Manifest: manifest, Digest: model.DigestOf(manifest)}, nil
}

// maxParamValue is MLflow's limit on a param's value (MAX_PARAM_VAL_LENGTH).
const maxParamValue = 6000

// ManifestFile is the name of the artifact's manifest (sha256sum's format)
// at the root of the run's artifacts, beside the model directory: `cd model
// && sha256sum -c ../manifest.sha256` checks a download.
const ManifestFile = "manifest.sha256"

// RunSpec is the run that records the artifact: its params (kind, files,
// digest, git revision, dataset), the metrics in its model.json, tags, and
// the directory itself with its manifest. Training and evaluation can start
// from it and add their own.
func (a Artifact) RunSpec(experiment string, rev Revision) RunSpec {
	files := make([]string, len(a.Manifest))
	for i, e := range a.Manifest {
		files[i] = e.Path
	}
	list := strings.Join(files, ",")
	if len(list) > maxParamValue {
		list = list[:maxParamValue-len("...")] + "..."
	}
	params := mlflow.KeyValues{
		"kind":             a.Meta.Kind,
		"artifact_version": a.Meta.Version,
		"artifact_digest":  a.Digest,
		"artifact_files":   list,
		"artifact_count":   strconv.Itoa(len(a.Manifest)),
		"git_revision":     rev.Commit,
		"git_dirty":        strconv.FormatBool(rev.Dirty),
	}
	metrics := map[string]float64{}
	if m := a.Meta.Metrics; m != nil {
		params["dataset"] = m.Dataset
		params["dataset_sha256"] = m.DatasetSHA256
		params["dataset_samples"] = strconv.Itoa(m.Samples)
		if !m.EvaluatedAt.IsZero() {
			params["evaluated_at"] = m.EvaluatedAt.UTC().Format(time.RFC3339)
		}
		metrics["accuracy"] = m.Accuracy
		metrics["f1_score"] = m.F1Score
	}
	tags := mlflow.KeyValues{
		TagArtifactVersion:         a.Meta.Version,
		TagDigest:                  a.Digest,
		"mlflow.source.git.commit": rev.Commit, // MLflow's UI links the run to it
	}
	if a.Meta.Description != "" {
		tags["mlflow.note.content"] = a.Meta.Description // the run's description in MLflow's UI
	}
	return RunSpec{
		Experiment:  experiment,
		Name:        "register-" + a.Meta.Version,
		Params:      params,
		Metrics:     metrics,
		Tags:        tags,
		ArtifactDir: a.Dir,
		Files:       map[string][]byte{ManifestFile: []byte(model.ManifestText(a.Manifest))},
	}
}

// Revision is the git commit an artifact directory was read at.
type Revision struct {
	Commit string // "unknown" outside a git work tree
	Dirty  bool   // the directory differs from the commit
}

// GitRevision is the commit of the work tree holding dir, and whether dir
// has changes (or untracked files) against it.
func GitRevision(ctx context.Context, dir string) (Revision, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return Revision{}, fmt.Errorf("git revision of %s: %w (outside a git work tree, pass --git-revision)", dir, gitError(err))
	}
	rev := Revision{Commit: strings.TrimSpace(string(out))}
	status, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--", ".").Output()
	if err != nil {
		return Revision{}, fmt.Errorf("git status of %s: %w", dir, gitError(err))
	}
	rev.Dirty = len(strings.TrimSpace(string(status))) > 0
	return rev, nil
}

func gitError(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
