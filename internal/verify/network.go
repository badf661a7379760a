package verify

import (
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ml-platform/platform/internal/netpol"
)

// Network checks the connectivity matrix (Config.NetworkMatrix) against the
// NetworkPolicies of everything rendered, once per environment, and prints how
// many flows each environment checked. Every environment shares one cluster,
// so the policies of all of them (and of the entry points and files) are
// evaluated together; each flow is a finding when cyclonus' verdict differs
// from its expectation. An environment that did not render is skipped (its
// render failure is already a finding).
func Network(c *Config, r *Rendered, out io.Writer) []Finding {
	if c.NetworkMatrix == "" {
		return nil
	}
	var envs []string
	for _, e := range c.Environments {
		envs = append(envs, e.Name)
	}
	m, err := netpol.Load(c.NetworkMatrix, envs)
	if err != nil {
		return []Finding{{Where: c.NetworkMatrix, Message: err.Error()}}
	}
	var objs []*unstructured.Unstructured
	for _, where := range r.Order {
		for _, o := range r.Objects[where] {
			objs = append(objs, o.Unstructured)
		}
	}
	cluster, err := netpol.NewCluster(objs)
	if err != nil {
		return []Finding{{Where: c.NetworkMatrix, Message: err.Error()}}
	}
	var fs []Finding
	for _, e := range c.Environments {
		if _, ok := r.Objects[e.Path]; !ok {
			fmt.Fprintf(out, "network: %s: not rendered, flows not checked\n", e.Name)
			continue
		}
		rep := cluster.Check(m, e.Name)
		allowed, denied, pending := rep.Counts()
		fmt.Fprintf(out, "network: %s: %d flows checked (%d allowed, %d denied), %d pending, %d wrong\n",
			e.Name, allowed+denied, allowed, denied, pending, len(rep.Failures()))
		for _, f := range rep.Failures() {
			fs = append(fs, Finding{Where: c.NetworkMatrix, Object: fmt.Sprintf("flow %q (%s)", f.Flow.Name, f.Env), Message: f.Describe() + ": " + f.Problem})
		}
	}
	return fs
}
