package abrollout

import (
	"context"
	"fmt"
	"strings"

	"github.com/ml-platform/platform/internal/experiment"
	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/lifecycle"
	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/router"
)

// Change is what one command wrote, and the commit it makes of it.
type Change struct {
	Files   []string // relative to the repository root
	Envs    []State  // each environment changed, as it is now
	Branch  string
	Message string
}

// AliasMover moves a model registry alias (MLflow's "production" or
// "staging") to a version: the seam for promotion in the registry, which
// `platformctl model promote` does. Promote calls it, when set, after the
// Git change is written, for every environment with an alias.
type AliasMover interface {
	MoveAlias(ctx context.Context, version, alias, reason string) error
}

// AliasOf is the registry alias an environment's servers follow with their
// primary model URI, as its rendered manifests say ("" when they serve the
// models directory of their image, as dev does: dev runs what Git says).
func AliasOf(repo *gitops.Repository, envName string) (string, error) {
	env, err := repo.Environment(envName)
	if err != nil {
		return "", err
	}
	objs, err := render.Build(env.Path)
	if err != nil {
		return "", fmt.Errorf("environment %s: %w", envName, err)
	}
	f, err := workload(objs)
	if err != nil {
		return "", fmt.Errorf("environment %s: %w", envName, err)
	}
	if f.modelSource != "mlflow" {
		return "", nil
	}
	primary, _, _ := strings.Cut(f.modelURI, ",")
	if primary = strings.TrimSpace(primary); primary == "" {
		return "", fmt.Errorf("environment %s: ML_INFERENCE_MODEL_SOURCE is mlflow but ML_INFERENCE_MODEL_URI is not set", envName)
	}
	u, err := lifecycle.ParseModelURI(primary)
	if err != nil {
		return "", fmt.Errorf("environment %s: ML_INFERENCE_MODEL_URI: %w", envName, err)
	}
	return u.Alias, nil
}

// live reports whether a traffic split still runs an experiment (two or
// more versions with traffic).
func live(traffic string) bool {
	ws, err := router.ParseWeights(traffic)
	if err != nil {
		return true // not ours to overwrite
	}
	n := 0
	for _, w := range ws {
		if w.Weight > 0 {
			n++
		}
	}
	return n > 1
}

// Start writes spec's split into env's overlay. It refuses when another
// experiment's split is live there.
func Start(repo *gitops.Repository, spec *experiment.Spec, env string) (Change, error) {
	e, err := repo.Environment(env)
	if err != nil {
		return Change{}, err
	}
	cur, err := ReadState(e)
	if err != nil {
		return Change{}, err
	}
	if cur != nil && cur.Experiment != spec.Name && live(cur.Traffic) {
		return Change{}, fmt.Errorf("experiment %s is running in %s (%s=%s): promote or abort it first", cur.Experiment, env, EnvVar, cur.Traffic)
	}
	files, ns, err := SetTraffic(repo, env, spec.Name, spec.Traffic())
	if err != nil {
		return Change{}, err
	}
	return Change{
		Files:  files,
		Envs:   []State{{Env: env, Dir: e.Path, Namespace: ns, Experiment: spec.Name, Traffic: spec.Traffic()}},
		Branch: fmt.Sprintf("abtest/%s/start-%s", spec.Name, env),
		Message: fmt.Sprintf("abtest %s: start in %s at %s\n\n%s\n\nControl %s, treatment %s; alpha %g, power %g, minimum detectable effect %g on a baseline accuracy of %g; at most %s.\nWritten by platformctl abtest start (%s).",
			spec.Name, env, spec.Traffic(), strings.TrimSpace(spec.Hypothesis), spec.Control, spec.Treatment,
			spec.Alpha, spec.Power, spec.Primary.MinimumDetectableEffect, spec.Primary.Baseline, spec.MaxDur, repo.Rel(spec.Path)),
	}, nil
}

// Promote writes winner at 100% in every environment running spec. why
// goes into the commit message (the verdict and its reason).
func Promote(ctx context.Context, repo *gitops.Repository, spec *experiment.Spec, winner, why string, registry AliasMover) (Change, error) {
	if winner != spec.Control && winner != spec.Treatment {
		return Change{}, fmt.Errorf("winner %q is neither the control (%s) nor the treatment (%s) of %s", winner, spec.Control, spec.Treatment, spec.Name)
	}
	c, err := settle(repo, spec, winner, "promote")
	if err != nil {
		return Change{}, err
	}
	c.Branch = fmt.Sprintf("abtest/%s/promote-%s", spec.Name, winner)
	c.Message = fmt.Sprintf("abtest %s: promote %s to 100%% in %s\n\n%s\nWritten by platformctl abtest promote.", spec.Name, winner, envNames(c.Envs), why)
	if registry != nil {
		for _, e := range c.Envs {
			alias, err := AliasOf(repo, e.Env)
			if err != nil {
				return c, fmt.Errorf("the Git change is written, but which alias %s follows is unknown: %w", e.Env, err)
			}
			if alias != "" {
				if err := registry.MoveAlias(ctx, winner, alias, fmt.Sprintf("abtest %s: %s", spec.Name, why)); err != nil {
					return c, fmt.Errorf("the Git change is written, but moving alias %s to %s failed: %w", alias, winner, err)
				}
			}
		}
	}
	return c, nil
}

// Abort writes the control at 100% in every environment running spec.
func Abort(repo *gitops.Repository, spec *experiment.Spec, why string) (Change, error) {
	c, err := settle(repo, spec, spec.Control, "abort")
	if err != nil {
		return Change{}, err
	}
	c.Branch = fmt.Sprintf("abtest/%s/abort", spec.Name)
	c.Message = fmt.Sprintf("abtest %s: abort, %s (the control) back to 100%% in %s\n\n%s\nWritten by platformctl abtest abort.", spec.Name, spec.Control, envNames(c.Envs), why)
	return c, nil
}

func settle(repo *gitops.Repository, spec *experiment.Spec, version, verb string) (Change, error) {
	envs, err := Running(repo, spec.Name)
	if err != nil {
		return Change{}, err
	}
	if len(envs) == 0 {
		return Change{}, fmt.Errorf("experiment %s runs in no environment (no %s names it): start it first with platformctl abtest start %s ENV", spec.Name, PatchFile, spec.Name)
	}
	traffic := version + "=100"
	var c Change
	for _, e := range envs {
		files, ns, err := SetTraffic(repo, e.Env, spec.Name, traffic)
		if err != nil {
			return Change{}, fmt.Errorf("%s in %s: %w", verb, e.Env, err)
		}
		c.Files = append(c.Files, files...)
		c.Envs = append(c.Envs, State{Env: e.Env, Dir: e.Dir, Namespace: ns, Experiment: spec.Name, Traffic: traffic})
	}
	return c, nil
}

func envNames(states []State) string {
	var names []string
	for _, s := range states {
		names = append(names, s.Env)
	}
	return strings.Join(names, ", ")
}
