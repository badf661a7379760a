// Package lifecycle is the model lifecycle on an MLflow model registry:
// logging a run (LogRun, also for training and evaluation), registering an
// artifact directory as a model version tagged with its digest, moving the
// staging and production aliases with a record of every move, the history
// of those moves, rollback, and the list of versions.
//
// MLflow keeps no history of its aliases, so every move is also recorded as a
// run in a dedicated experiment (MovesExperiment): who, when, from which
// version to which, and why (ADR-010). The registry's conventions (the tag
// names, the aliases, the model URIs servers follow) are defined here, once,
// for platformctl and ml-inference alike.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ml-platform/platform/internal/mlflow"
)

// DefaultModel is the registered model ml-inference serves.
const DefaultModel = "sentiment-analyzer"

// The tags of every model version platformctl registers. ml-inference
// refuses a version without a valid TagDigest, and checks the files it
// downloads against it.
const (
	TagDigest          = "artifact_digest"  // model.Digest of the artifact directory
	TagKind            = "artifact_kind"    // model.json's kind
	TagArtifactVersion = "artifact_version" // model.json's own version name
	TagGitRevision     = "git_revision"     // the commit the artifact was registered from
)

// ArtifactPath is where a run keeps the model's artifact directory: a
// version's source is the run's artifact URI + "/" + ArtifactPath.
const ArtifactPath = "model"

// The aliases servers follow. MLflow's stages are deprecated; aliases are
// its replacement.
const (
	Staging    = "staging"
	Production = "production"
)

// Aliases are the alias names the lifecycle moves.
var Aliases = []string{Staging, Production}

// CheckAlias refuses an alias the lifecycle does not know.
func CheckAlias(alias string) error {
	if !slices.Contains(Aliases, alias) {
		return fmt.Errorf("unknown alias %q: want one of %s", alias, strings.Join(Aliases, ", "))
	}
	return nil
}

// CheckModelName refuses a registered model name that cannot be quoted in
// MLflow's search filters (which have no escape for a single quote).
func CheckModelName(name string) error {
	if name == "" || strings.ContainsAny(name, "'\"\\\n") {
		return fmt.Errorf("registered model name %q: want a non-empty name without quotes, backslashes or newlines", name)
	}
	return nil
}

// Registry is the lifecycle of one registered model.
type Registry struct {
	c     *mlflow.Client
	model string
	now   func() time.Time
}

// New returns the lifecycle of the registered model named model.
func New(c *mlflow.Client, model string) (*Registry, error) {
	if err := CheckModelName(model); err != nil {
		return nil, err
	}
	return &Registry{c: c, model: model, now: time.Now}, nil
}

// Model is the registered model's name.
func (r *Registry) Model() string { return r.model }

// ErrUnreachable wraps a failure to reach MLflow at all, so the CLI can say
// so plainly.
var ErrUnreachable = errors.New("MLflow is unreachable")

// reach turns a transport failure into ErrUnreachable.
func (r *Registry) reach(err error) error {
	var te *mlflow.TransportError
	if errors.As(err, &te) {
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, r.c.TrackingURI(), err)
	}
	return err
}

// versions lists every version of the model, newest first.
func (r *Registry) versions(ctx context.Context, filter string) ([]mlflow.ModelVersion, error) {
	f := fmt.Sprintf("name = '%s'", r.model)
	if filter != "" {
		f += " and " + filter
	}
	var out []mlflow.ModelVersion
	token := ""
	for {
		page, err := r.c.SearchModelVersions(ctx, mlflow.SearchRequest{Filter: f, MaxResults: 1000, PageToken: token})
		if err != nil {
			return nil, r.reach(err)
		}
		out = append(out, page.Versions...)
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	slices.SortFunc(out, func(a, b mlflow.ModelVersion) int { return versionNumber(b.Version) - versionNumber(a.Version) })
	return out, nil
}

func versionNumber(v string) int {
	n, _ := strconv.Atoi(v)
	return n
}

// CheckVersion refuses a version that is not a registry version number.
func CheckVersion(v string) error {
	if n, err := strconv.Atoi(v); err != nil || n < 1 || strconv.Itoa(n) != v {
		return fmt.Errorf("version %q: want a registry version number (1, 2, ...)", v)
	}
	return nil
}

// ErrUnknownVersion is a version the registered model does not have.
var ErrUnknownVersion = errors.New("unknown version")

// servable returns a version that a server can load: it exists, is READY
// and carries an artifact digest.
func (r *Registry) servable(ctx context.Context, version string) (mlflow.ModelVersion, error) {
	if err := CheckVersion(version); err != nil {
		return mlflow.ModelVersion{}, err
	}
	mv, err := r.c.GetModelVersion(ctx, r.model, version)
	if errors.Is(err, mlflow.ErrNotFound) {
		known := "none"
		if all, lerr := r.versions(ctx, ""); lerr == nil && len(all) > 0 {
			var names []string
			for _, v := range all {
				names = append(names, v.Version)
			}
			known = strings.Join(names, ", ")
		}
		return mlflow.ModelVersion{}, fmt.Errorf("%w: model %q has no version %s (versions: %s)", ErrUnknownVersion, r.model, version, known)
	}
	if err != nil {
		return mlflow.ModelVersion{}, r.reach(err)
	}
	if mv.Status != mlflow.VersionReady {
		return mlflow.ModelVersion{}, fmt.Errorf("model %q version %s is %s, not READY", r.model, version, mv.Status)
	}
	if mv.Tags[TagDigest] == "" {
		return mlflow.ModelVersion{}, fmt.Errorf("model %q version %s has no %s tag, so no server would load it: register artifacts with platformctl model register", r.model, version, TagDigest)
	}
	return mv, nil
}

// DefaultTrackingURI is where the lifecycle's commands find MLflow unless a
// flag says: MLflow's own MLFLOW_TRACKING_URI if set, else the address `make
// mlflow` serves.
func DefaultTrackingURI(getenv func(string) string) string {
	if v := getenv("MLFLOW_TRACKING_URI"); v != "" {
		return v
	}
	return "http://localhost:5000"
}
