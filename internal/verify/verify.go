// Package verify proves the GitOps repository before anything reaches a
// cluster. It renders every entry point that infrastructure/platform.yaml
// declares, once, and runs an ordered list of named checks over the result,
// each timed and reported (Checks): the environments' replicas and HPA
// bounds, Argo CD Applications' paths and fork conventions, AppProjects,
// Pod Security through the upstream evaluator, the Kyverno policies through
// the pinned CLI (the one source of the workload rules), the connectivity
// matrix, secrets in Git, and server-side validation on a real
// kube-apiserver.
package verify

import (
	"context"
	"fmt"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
)

// Finding is one problem: where it is (entry point or file), which object,
// and what is wrong.
type Finding struct {
	Where   string
	Object  string
	Message string
}

func (f Finding) String() string {
	if f.Object == "" {
		return f.Where + ": " + f.Message
	}
	return f.Where + ": " + f.Object + ": " + f.Message
}

// Rendered is every object verify looks at, by entry point (or file).
type Rendered struct {
	Order   []string // entry points and files, in declaration order
	Objects map[string][]render.Object
	Env     map[string]gitops.Environment // entry point -> environment, for overlays
}

// All returns every rendered object, in order.
func (r *Rendered) All() []render.Object {
	var out []render.Object
	for _, where := range r.Order {
		out = append(out, r.Objects[where]...)
	}
	return out
}

// Render builds every environment and entry point and parses every file,
// through rr so that later checks reuse the builds. Failures are findings,
// so one broken overlay does not hide the others.
func Render(repo *gitops.Repository, rr *gitops.Renderer) (*Rendered, []Finding) {
	r := &Rendered{Objects: map[string][]render.Object{}, Env: map[string]gitops.Environment{}}
	var findings []Finding
	add := func(where string, objs []render.Object, err error) {
		if err != nil {
			findings = append(findings, Finding{Where: where, Message: err.Error()})
			return
		}
		r.Order = append(r.Order, where)
		r.Objects[where] = objs
	}
	for _, e := range repo.Environments {
		objs, err := rr.Build(e.Path)
		add(e.Path, objs, err)
		r.Env[e.Path] = e
	}
	for _, p := range repo.EntryPoints {
		objs, err := rr.Build(p)
		add(p, objs, err)
	}
	for _, p := range repo.Files {
		objs, err := rr.Read(p)
		add(p, objs, err)
	}
	return r, findings
}

// Inputs is what every check reads: the declaration, the render and the
// cache behind it, and the run's options.
type Inputs struct {
	Repo     *gitops.Repository
	Rendered *Rendered
	Renderer *gitops.Renderer
	Options  Options
	// cluster is the API server, started when the run starts so that it
	// comes up while the other checks run; nil starts one on demand.
	cluster *startingCluster
}

// Check is one named stage of verify.
type Check struct {
	Name string
	// Run returns the findings and a one-line summary of what was checked;
	// an error means the check could not run at all (a missing tool), which
	// fails verify like a finding.
	Run func(ctx context.Context, in *Inputs) ([]Finding, string, error)
}

// Checks is verify, in order: the cheap structural checks first, the API
// server last.
func Checks() []Check {
	return []Check{
		{"environments", checkEnvironments},
		{"applications", checkApplications},
		{"appprojects", checkProjects},
		{"pod security", checkPodSecurity},
		{"kyverno policies", checkPolicies},
		{"network matrix", checkNetwork},
		{"secrets in git", checkSecrets},
		{"sync policy", checkSyncPolicy},
		{"crd ordering", checkCRDOrdering},
		{"metrics sources", checkMetricsSources},
		{"priorities", checkPriorities},
		{"images", checkImages},
		{"secret producers", checkSecretProducers},
		{"workload settings", checkWorkloadSettings},
		{"kube-apiserver", checkServer},
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
