package verify

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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
// The CLI costs about 8 ms of CPU per policy and object, whether the policy
// matches the object or not, so verify hands it no pair it would skip
// anyway: each object goes only to the policies whose namespaceSelector
// matches its namespace's labels (the mode copy that judges it) and whose
// resourceRules name its kind, as Kubernetes matches them; an object two
// entry points render alike is judged once. One CLI run cannot hold two
// objects of the same identity, so each set of policies gets as few runs as
// keep identities unique, and the runs go in parallel. Every run also gets the rendered
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
		group    *policyGroup
		policies []render.Object // those of the group that match the batch's kinds, and the exceptions
		batch    *batch
		run      *policy.Run
		err      error
	}
	var jobs []*job
	for _, g := range groups {
		sets := map[string][]string{} // "a,b" -> [a b]
		for _, o := range in.Rendered.All() {
			if names := g.judging(o, namespaces); len(names) > 0 {
				sets[strings.Join(names, ",")] = names
			}
		}
		for _, key := range slices.Sorted(maps.Keys(sets)) {
			keep := func(o render.Object) bool { return strings.Join(g.judging(o, namespaces), ",") == key }
			for _, b := range packBatches(in.Rendered, keep) {
				jobs = append(jobs, &job{group: g, policies: g.bundleOf(sets[key]), batch: b})
			}
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
				if _, ok := j.batch.has[identity(ns)]; !ok {
					resources = append(resources, ns)
				}
			}
			j.run, j.err = policy.Apply(bin, work, j.policies, resources)
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
			kindMatched := slices.ContainsFunc(groups, func(g *policyGroup) bool { return g.listsKind(gvk) })
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
	selector   labels.Selector // nil: every namespace
	names      []string        // the policies, in bundle order
	objects    map[string]render.Object
	rules      map[string][]resourceRule // each policy's matchConstraints.resourceRules
	exceptions []render.Object
	policies   int
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

// listsKind reports whether some policy of the group names the kind.
func (g *policyGroup) listsKind(gvk schema.GroupVersionKind) bool {
	for _, rules := range g.rules {
		if slices.ContainsFunc(rules, func(r resourceRule) bool { return r.matches(gvk) }) {
			return true
		}
	}
	return false
}

// judging names the group's policies that can match o: those whose
// resourceRules name its kind, when o is namespaced and the selector matches
// its namespace's labels. (Every kind the policies match is namespaced.)
func (g *policyGroup) judging(o render.Object, namespaces map[string]render.Object) []string {
	ns := o.GetNamespace()
	if ns == "" {
		return nil
	}
	if g.selector != nil {
		nsLabels := labels.Set{"kubernetes.io/metadata.name": ns}
		if n, ok := namespaces[ns]; ok {
			for k, v := range n.GetLabels() {
				nsLabels[k] = v
			}
		}
		if !g.selector.Matches(nsLabels) {
			return nil
		}
	}
	gvk := o.GroupVersionKind()
	var out []string
	for _, name := range g.names {
		if slices.ContainsFunc(g.rules[name], func(r resourceRule) bool { return r.matches(gvk) }) {
			out = append(out, name)
		}
	}
	return out
}

// bundleOf is the named policies and every exception, for one CLI run.
func (g *policyGroup) bundleOf(names []string) []render.Object {
	var out []render.Object
	for _, n := range names {
		out = append(out, g.objects[n])
	}
	return append(out, g.exceptions...)
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
			g = &policyGroup{objects: map[string]render.Object{}, rules: map[string][]resourceRule{}}
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
		g.names = append(g.names, o.GetName())
		g.objects[o.GetName()] = o
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
			g.rules[o.GetName()] = append(g.rules[o.GetName()], rr)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the bundle renders no ValidatingPolicy")
	}
	for _, g := range out {
		g.exceptions = exceptions
	}
	return out, nil
}

// batch is one Kyverno CLI run: objects with distinct identities, and for
// each identity the entry points that render it.
type batch struct {
	objects []render.Object
	has     map[string]string   // identity -> content digest
	where   map[string][]string // Kind/namespace/name -> entry points
}

// identity is what a CLI run must hold once: group, kind, namespace, name.
func identity(o render.Object) string {
	return o.GroupVersionKind().Group + "/" + o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

// digest identifies an object's content (encoding/json sorts map keys).
func digest(o render.Object) string {
	data, _ := json.Marshal(o.Object)
	sum := sha256.Sum256(data)
	return string(sum[:])
}

// packBatches places every object keep keeps into as few CLI runs as keep
// identities unique. An object that another entry point renders exactly
// alike (most of the observability stack's two shapes, for instance) is
// judged once and its results are reported in both entry points; one of the
// same identity but other content goes to the next run with room for it.
func packBatches(r *Rendered, keep func(render.Object) bool) []*batch {
	var out []*batch
	for _, where := range r.Order {
		for _, o := range r.Objects[where] {
			if !keep(o) {
				continue
			}
			id, sum := identity(o), digest(o)
			ref := o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
			if i := slices.IndexFunc(out, func(b *batch) bool { return b.has[id] == sum }); i >= 0 {
				out[i].where[ref] = append(out[i].where[ref], where)
				continue
			}
			i := slices.IndexFunc(out, func(b *batch) bool { _, taken := b.has[id]; return !taken })
			if i < 0 {
				out = append(out, &batch{has: map[string]string{}, where: map[string][]string{}})
				i = len(out) - 1
			}
			b := out[i]
			b.objects = append(b.objects, o)
			b.has[id] = sum
			b.where[ref] = append(b.where[ref], where)
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
