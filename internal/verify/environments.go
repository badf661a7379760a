package verify

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
)

// workloadKinds are the kinds whose replicas an environment declares.
var workloadKinds = []string{"Deployment", "StatefulSet", "Rollout"}

// checkEnvironments: what only the declaration knows, so no policy can check
// it. Every object of an environment carries env=<its name>; each workload
// the environment lists is rendered, with its replicas; an HPA scaling it
// starts at those replicas and can grow.
func checkEnvironments(_ context.Context, in *Inputs) ([]Finding, string, error) {
	var fs []Finding
	n := 0
	for _, where := range in.Rendered.Order {
		env, ok := in.Rendered.Env[where]
		if !ok {
			continue
		}
		n++
		objs := in.Rendered.Objects[where]
		for _, o := range objs {
			report := func(format string, args ...any) {
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(format, args...)})
			}
			v, ok := o.GetLabels()["env"]
			switch {
			case ok && v != env.Name:
				report("label env=%q in environment %q", v, env.Name)
			case !ok && o.GetKind() == "Namespace":
				// The Namespace's env label selects the Kyverno mode
				// (audit or enforce) of everything in it.
				report("label env is missing: it selects the policy mode of the namespace; want env=%s", env.Name)
			}
			checkReplicas(o, env, report)
		}
		fs = append(fs, missingWorkloads(where, env, objs)...)
	}
	return fs, plural(n, "environment", "environments") + ": env labels, replicas, HPA bounds", nil
}

func checkReplicas(o render.Object, env gitops.Environment, report func(string, ...any)) {
	kind := o.GetKind()
	if slices.Contains(workloadKinds, kind) {
		want, ok := env.Replicas[o.GetName()]
		if !ok {
			return
		}
		got, found, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
		if !found {
			got = 1
		}
		if got != want {
			report("spec.replicas is %d; environment %s wants %d", got, env.Name, want)
		}
	}
	if kind == "HorizontalPodAutoscaler" {
		target, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "name")
		want, ok := env.Replicas[target]
		if !ok {
			return
		}
		minR, found, _ := unstructured.NestedInt64(o.Object, "spec", "minReplicas")
		if !found {
			minR = 1
		}
		maxR, _, _ := unstructured.NestedInt64(o.Object, "spec", "maxReplicas")
		if minR != want {
			report("spec.minReplicas is %d; environment %s runs %d replicas, and the HPA would scale it to %d", minR, env.Name, want, max(minR, 1))
		}
		if maxR < minR {
			report("spec.maxReplicas %d is below spec.minReplicas %d", maxR, minR)
		}
	}
}

func missingWorkloads(where string, env gitops.Environment, objs []render.Object) []Finding {
	var fs []Finding
	for name := range env.Replicas {
		found := slices.ContainsFunc(objs, func(o render.Object) bool {
			return o.GetName() == name && slices.Contains(workloadKinds, o.GetKind())
		})
		if !found {
			fs = append(fs, Finding{Where: where, Message: fmt.Sprintf("environment %s expects workload %q, which is not rendered", env.Name, name)})
		}
	}
	return fs
}
