package verify

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/netpol"
)

// checkNetwork is Network as a stage of verify.
func checkNetwork(_ context.Context, in *Inputs) ([]Finding, string, error) {
	if in.Repo.NetworkMatrix == "" {
		return nil, "no networkMatrix declared", nil
	}
	fs, perEnv := Network(in.Repo, in.Rendered)
	return fs, strings.Join(perEnv, "; "), nil
}

// Network checks the connectivity matrix (networkMatrix) against the
// NetworkPolicies of everything rendered, once per environment, and says
// per environment how many flows it checked. Every environment shares one
// cluster, so the policies of all of them (and of the entry points and
// files) are evaluated together; each flow is a finding when cyclonus'
// verdict differs from its expectation. An environment that did not render
// is skipped (its render failure is already a finding).
func Network(repo *gitops.Repository, r *Rendered) ([]Finding, []string) {
	m, err := netpol.Load(repo.NetworkMatrix, repo.EnvironmentNames())
	if err != nil {
		return []Finding{{Where: repo.NetworkMatrix, Message: err.Error()}}, nil
	}
	var objs []*unstructured.Unstructured
	for _, o := range r.All() {
		objs = append(objs, o.Unstructured)
	}
	cluster, err := netpol.NewCluster(objs)
	if err != nil {
		return []Finding{{Where: repo.NetworkMatrix, Message: err.Error()}}, nil
	}
	var fs []Finding
	var perEnv []string
	for _, e := range repo.Environments {
		if _, ok := r.Objects[e.Path]; !ok {
			perEnv = append(perEnv, e.Name+": not rendered, flows not checked")
			continue
		}
		rep := cluster.Check(m, e.Name)
		allowed, denied, pending := rep.Counts()
		perEnv = append(perEnv, fmt.Sprintf("%s %d flows (%d allowed, %d denied, %d pending, %d wrong)",
			e.Name, allowed+denied, allowed, denied, pending, len(rep.Failures())))
		for _, f := range rep.Failures() {
			fs = append(fs, Finding{Where: repo.NetworkMatrix, Object: fmt.Sprintf("flow %q (%s)", f.Flow.Name, f.Env), Message: f.Describe() + ": " + f.Problem})
		}
	}
	return fs, perEnv
}
