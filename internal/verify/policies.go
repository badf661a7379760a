package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/policy"
	"github.com/ml-platform/platform/internal/render"
)

// checkPolicies runs the Kyverno policy bundle (Repository.Policies, as the
// kyverno-policies Application syncs it: both modes and their
// PolicyExceptions) with the pinned Kyverno CLI over every rendered object,
// and reports every failing result on the object it names, in every entry
// point that renders that object. The policies are the one source of the
// workload rules; verify adds no copy of them.
//
// The CLI costs about 8 ms of CPU per policy and object, so verify does not
// hand it pairs it would skip anyway: each object goes only to the policies
// whose namespaceSelector matches its namespace's labels (the mode copy that
// judges it) and only if some policy's resourceRules name its kind, as
// Kubernetes matches them. One CLI run cannot hold two
// objects of the same identity (the observability stack renders in two
// shapes), so each group of policies gets as few runs as keep identities
// unique, and the runs go in parallel. Every run also gets the rendered
// Namespaces, whose labels select the mode. A workload no policy judged
// (pass, fail or skip) is a finding too: a kind the policies do not match
// would otherwise pass unnoticed.
func checkPolicies(ctx context.Context, in *Inputs) ([]Finding, string, error) {
	bin := in.Options.KyvernoBin
	if bin == "" {
		return nil, "", errors.New("the Kyverno CLI is not set: pass --kyverno-bin or export KYVERNO_BIN=\"$(hack/tools.sh path kyverno)\" (make verify does)")
	}
	if in.Repo.Policies == "" {
		return nil, "", fmt.Errorf("%s: field \"policies\" is required: the Kyverno bundle every object must pass", gitops.ConfigFile)
	}
	bundle, err := in.Renderer.Build(in.Repo.Policies)
	if err != nil {
		return nil, "", fmt.Errorf("policies %s: %w", in.Repo.Rel(in.Repo.Policies), err)
	}
	namespaces := map[string]render.Object{}
	for _, o := range in.Rendered.All() {
		if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
			namespaces[o.GetName()] = o
		}
	}
	groups, err := policyGroups(bundle)
	if err != nil {
		return nil, "", fmt.Errorf("policies %s: %w", in.Repo.Rel(in.Repo.Policies), err)
	}
	type job struct {
		group *policyGroup
		batch *batch
		run   *policy.Run
		err   error
	}
	var jobs []*job
	for _, g := range groups {
		for _, b := range packBatches(in.Rendered, func(o render.Object) bool { return g.judges(o, namespaces) }) {
			jobs = append(jobs, &job{group: g, batch: b})
		}
	}
	work, err := os.MkdirTemp("", "verify-kyverno-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(work)
	sem := make(chan struct{}, max(runtime.NumCPU(), 1))
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			resources := slices.Clone(j.batch.objects)
			for _, ns := range namespaces {
				if !j.batch.has[identity(ns)] {
					resources = append(resources, ns)
				}
			}
			j.run, j.err = policy.Apply(bin, work, j.group.objects, resources)
		})
	}
	wg.Wait()

	var fs []Finding
	var errs []error
	counts := map[string]int{}
	results := map[string]int{}  // Kind/namespace/name -> results, per entry point batch
	expected := map[string]int{} // Kind/namespace/name -> policies that must judge it
	modes := map[string]int{}    // Kind/namespace/name -> groups (modes) that judge it
	for _, j := range jobs {
		if j.err != nil {
			errs = append(errs, j.err)
			continue
		}
		for id, wheres := range j.batch.where {
			for _, where := range wheres {
				expected[where+"|"+id] += j.group.policies
				modes[where+"|"+id]++
			}
		}
		for _, res := range j.run.Results {
			counts[res.Result]++
			id := res.Kind + "/" + res.Namespace + "/" + res.Name
			for _, where := range j.batch.where[id] {
				results[where+"|"+id]++
			}
			if res.Result != "fail" && res.Result != "error" {
				continue
			}
			for _, where := range j.batch.where[id] {
				fs = append(fs, Finding{Where: where, Object: refOf(res.Kind, res.Namespace, res.Name),
					Message: fmt.Sprintf("Kyverno %s (%s): %s", res.Policy, res.Result, strings.TrimSpace(res.Message))})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, "", err
	}
	// Every workload is judged (pass, fail or skip) by every policy of
	// exactly one mode: a kind some policy does not list, or a namespace
	// both modes (or neither) select, would otherwise pass unnoticed.
	for _, where := range in.Rendered.Order {
		for _, o := range in.Rendered.Objects[where] {
			if _, ok := podSpec(o.Unstructured); !ok {
				continue
			}
			key := where + "|" + o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
			gvk := o.GroupVersionKind()
			kindMatched := slices.ContainsFunc(groups, func(g *policyGroup) bool {
				return slices.ContainsFunc(g.resources, func(r resourceRule) bool { return r.matches(gvk) })
			})
			switch got, want := results[key], expected[key]; {
			case !kindMatched:
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: "no Kyverno policy judged this workload: no policy lists its kind; add it to the policies' matchConstraints in " + in.Repo.Rel(in.Repo.Policies)})
			case modes[key] != 1:
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf("%d policy modes select this workload's namespace; want exactly one (the namespaceSelectors of %s)", modes[key], in.Repo.Rel(in.Repo.Policies))})
			case got == 0:
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: "no Kyverno policy judged this workload: add its kind to the policies' matchConstraints in " + in.Repo.Rel(in.Repo.Policies)})
			case got != want:
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf("judged by %d of the %d policies of its mode: one of them does not list its kind in matchConstraints (%s)", got, want, in.Repo.Rel(in.Repo.Policies))})
			}
		}
	}
	pols := 0
	for _, g := range groups {
		pols += g.policies
	}
	return fs, fmt.Sprintf("%d policies (%s) over %d objects in %s: %d pass, %d fail, %d skip, %d error",
		pols, plural(len(groups), "mode", "modes"), len(in.Rendered.All()), plural(len(jobs), "CLI run", "CLI runs"),
		counts["pass"], counts["fail"], counts["skip"], counts["error"]), nil
}

// policyGroup is the policies of the bundle that share a namespaceSelector
// (one mode's copies), with every PolicyException.
type policyGroup struct {
	selector  labels.Selector // nil: every namespace
	objects   []render.Object // the policies and the exceptions
	policies  int
	resources []resourceRule // every policy's matchConstraints.resourceRules
}

// resourceRule is the part of a policy's resourceRules that picks objects
// by what they are.
type resourceRule struct {
	APIGroups []string `json:"apiGroups"`
	Resources []string `json:"resources"`
}

func (r resourceRule) matches(gvk schema.GroupVersionKind) bool {
	plural, _ := meta.UnsafeGuessKindToResource(gvk)
	return (slices.Contains(r.APIGroups, "*") || slices.Contains(r.APIGroups, gvk.Group)) &&
		(slices.Contains(r.Resources, "*") || slices.Contains(r.Resources, plural.Resource))
}

// judges reports whether the group's policies can match o: an object of a
// kind some policy's resourceRules name, in a namespace whose labels the
// selector matches. (Every kind the policies match is namespaced.)
func (g *policyGroup) judges(o render.Object, namespaces map[string]render.Object) bool {
	ns := o.GetNamespace()
	if ns == "" {
		return false
	}
	gvk := o.GroupVersionKind()
	if !slices.ContainsFunc(g.resources, func(r resourceRule) bool { return r.matches(gvk) }) {
		return false
	}
	if g.selector == nil {
		return true
	}
	nsLabels := labels.Set{"kubernetes.io/metadata.name": ns}
	if n, ok := namespaces[ns]; ok {
		for k, v := range n.GetLabels() {
			nsLabels[k] = v
		}
	}
	return g.selector.Matches(nsLabels)
}

// policyGroups splits the bundle's ValidatingPolicies by namespaceSelector.
func policyGroups(bundle []render.Object) ([]*policyGroup, error) {
	var exceptions []render.Object
	byKey := map[string]*policyGroup{}
	var out []*policyGroup
	for _, o := range bundle {
		switch o.GetKind() {
		case "PolicyException":
			exceptions = append(exceptions, o)
			continue
		case "ValidatingPolicy":
		default:
			continue
		}
		raw, found, err := unstructured.NestedMap(o.Object, "spec", "matchConstraints", "namespaceSelector")
		if err != nil {
			return nil, fmt.Errorf("%s: spec.matchConstraints.namespaceSelector: %w", o.Ref(), err)
		}
		key := fmt.Sprint(raw)
		g, ok := byKey[key]
		if !ok {
			g = &policyGroup{}
			if found {
				var ls metav1.LabelSelector
				if err := kruntime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
					return nil, fmt.Errorf("%s: spec.matchConstraints.namespaceSelector: %w", o.Ref(), err)
				}
				if g.selector, err = metav1.LabelSelectorAsSelector(&ls); err != nil {
					return nil, fmt.Errorf("%s: spec.matchConstraints.namespaceSelector: %w", o.Ref(), err)
				}
			}
			byKey[key] = g
			out = append(out, g)
		}
		g.objects = append(g.objects, o)
		g.policies++
		rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "matchConstraints", "resourceRules")
		for _, r := range rules {
			m, ok := r.(map[string]any)
			if !ok {
				continue
			}
			var rr resourceRule
			if err := kruntime.DefaultUnstructuredConverter.FromUnstructured(m, &rr); err != nil {
				return nil, fmt.Errorf("%s: spec.matchConstraints.resourceRules: %w", o.Ref(), err)
			}
			g.resources = append(g.resources, rr)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the bundle renders no ValidatingPolicy")
	}
	for _, g := range out {
		g.objects = append(g.objects, exceptions...)
	}
	return out, nil
}

// batch is one Kyverno CLI run: objects with distinct identities, and for
// each identity the entry points that render it.
type batch struct {
	objects []render.Object
	has     map[string]bool     // identity
	where   map[string][]string // Kind/namespace/name -> entry points
}

// identity is what a CLI run must hold once: group, kind, namespace, name.
func identity(o render.Object) string {
	return o.GroupVersionKind().Group + "/" + o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

// packBatches puts the objects of each entry point that keep says to keep,
// together, into the first batch where none of their identities is taken
// yet, or into a new one.
func packBatches(r *Rendered, keep func(render.Object) bool) []*batch {
	var out []*batch
	for _, where := range r.Order {
		var objs []render.Object
		for _, o := range r.Objects[where] {
			if keep(o) {
				objs = append(objs, o)
			}
		}
		if len(objs) == 0 {
			continue
		}
		var target *batch
		for _, b := range out {
			if !slices.ContainsFunc(objs, func(o render.Object) bool { return b.has[identity(o)] }) {
				target = b
				break
			}
		}
		if target == nil {
			target = &batch{has: map[string]bool{}, where: map[string][]string{}}
			out = append(out, target)
		}
		for _, o := range objs {
			target.objects = append(target.objects, o)
			target.has[identity(o)] = true
			id := o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
			target.where[id] = append(target.where[id], where)
		}
	}
	return out
}

func refOf(kind, ns, name string) string {
	if ns == "" {
		return kind + "/" + name
	}
	return kind + "/" + ns + "/" + name
}
