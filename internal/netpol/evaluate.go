package netpol

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// NamespaceNameLabel is set by the API server on every Namespace; policies
// select other namespaces by it.
const NamespaceNameLabel = "kubernetes.io/metadata.name"

// Cluster is what the rendered manifests put in a cluster, as far as network
// policy is concerned: the NetworkPolicies (compiled by cyclonus), the labels
// of the namespaces they create, and the pod templates (for pods' full label
// sets and named ports).
type Cluster struct {
	Policies []*networkingv1.NetworkPolicy
	policy   *matcher.Policy
	nsLabels map[string]map[string]string
	governed map[string]bool // namespaces these manifests create or put policies in
	pods     []podTemplate
}

type podTemplate struct {
	ref       string
	namespace string
	labels    map[string]string
	ports     []corev1.ContainerPort
}

// NewCluster compiles the NetworkPolicies among objs. Every object is
// considered; those that are not NetworkPolicies, Namespaces or workloads are
// ignored. A NetworkPolicy that does not convert strictly is an error naming it.
func NewCluster(objs []*unstructured.Unstructured) (c *Cluster, err error) {
	c = &Cluster{nsLabels: map[string]map[string]string{}, governed: map[string]bool{}}
	for _, u := range objs {
		switch u.GetKind() {
		case "Namespace":
			c.governed[u.GetName()] = true
			c.nsLabels[u.GetName()] = u.GetLabels()
		case "NetworkPolicy":
			if !strings.HasPrefix(u.GetAPIVersion(), "networking.k8s.io/") {
				continue
			}
			np := &networkingv1.NetworkPolicy{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, np, true); err != nil {
				return nil, fmt.Errorf("NetworkPolicy %s: %v", ref(u), err)
			}
			if np.Namespace == "" {
				np.Namespace = corev1.NamespaceDefault
			}
			defaultPolicyTypes(np)
			c.governed[np.Namespace] = true
			c.Policies = append(c.Policies, np)
		default:
			if t, ok := templateOf(u); ok {
				c.pods = append(c.pods, t)
			}
		}
	}
	defer func() {
		if p := recover(); p != nil {
			c, err = nil, fmt.Errorf("cyclonus could not compile the NetworkPolicies: %v", p)
		}
	}()
	c.policy = matcher.BuildNetworkPolicies(false, c.Policies)
	return c, nil
}

// defaultPolicyTypes does what the API server does with an empty
// spec.policyTypes: Ingress, plus Egress when there are egress rules.
func defaultPolicyTypes(np *networkingv1.NetworkPolicy) {
	if len(np.Spec.PolicyTypes) > 0 {
		return
	}
	np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if len(np.Spec.Egress) > 0 {
		np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
	}
}

func ref(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}

// templateOf returns a workload's pod template: its labels and ports.
func templateOf(u *unstructured.Unstructured) (podTemplate, bool) {
	var path []string
	switch u.GetKind() {
	case "Pod":
		path = nil
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Rollout":
		path = []string{"spec", "template"}
	case "CronJob":
		path = []string{"spec", "jobTemplate", "spec", "template"}
	default:
		return podTemplate{}, false
	}
	tmpl := u.Object
	if path != nil {
		m, found, err := unstructured.NestedMap(u.Object, path...)
		if !found || err != nil {
			return podTemplate{}, false
		}
		tmpl = m
	}
	var pod corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(map[string]any{
		"metadata": tmpl["metadata"], "spec": tmpl["spec"],
	}, &pod); err != nil {
		return podTemplate{}, false // malformed workloads are the API server check's concern
	}
	ns := u.GetNamespace()
	if ns == "" {
		ns = corev1.NamespaceDefault
	}
	t := podTemplate{ref: u.GetKind() + "/" + ref(u), namespace: ns, labels: pod.Labels}
	for _, ctr := range pod.Spec.Containers {
		t.ports = append(t.ports, ctr.Ports...)
	}
	return t, true
}

// Result is one flow's evaluation in one environment.
type Result struct {
	Env  string
	Flow Flow // with the environment substituted
	// Checked is false for a pending flow that was skipped.
	Checked bool
	Got     Verdict
	// Explain says which policies decided, per direction.
	Explain string
	// Problem is why this result fails verification ("" when it passes).
	Problem string
}

// Describe is the flow as printed: from -> to:port/protocol.
func (r Result) Describe() string {
	return fmt.Sprintf("%s -> %s:%d/%s", r.Flow.From, r.Flow.To, r.Flow.Port, r.Flow.Protocol)
}

func (r Result) String() string {
	s := fmt.Sprintf("flow %q (%s): %s: %s", r.Flow.Name, r.Env, r.Describe(), r.Problem)
	if r.Flow.Why != "" {
		s += " [why: " + r.Flow.Why + "]"
	}
	return s
}

// Report is a matrix checked in one environment.
type Report struct {
	Env     string
	Results []Result
}

// Counts returns how many flows were checked and found allowed or denied, and
// how many were skipped as pending.
func (r Report) Counts() (allowed, denied, pending int) {
	for _, res := range r.Results {
		switch {
		case !res.Checked:
			pending++
		case res.Got == Allow:
			allowed++
		default:
			denied++
		}
	}
	return
}

// Failures are the results whose verdict differs from the expectation (or
// whose pending mark is wrong).
func (r Report) Failures() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Problem != "" {
			out = append(out, res)
		}
	}
	return out
}

// Check evaluates every flow of the matrix that applies to env.
func (c *Cluster) Check(m *Matrix, env string) Report {
	rep := Report{Env: env}
	for _, f := range m.ForEnv(env) {
		rep.Results = append(rep.Results, c.checkFlow(f, env))
	}
	return rep
}

func (c *Cluster) checkFlow(f Flow, env string) Result {
	res := Result{Env: env, Flow: f}
	checkable := c.governed[f.From.Namespace] || c.governed[f.To.Namespace]
	ends := strings.Join(slices.DeleteFunc([]string{f.From.Namespace, f.To.Namespace}, func(s string) bool { return s == "" }), " and ")
	switch {
	case f.Pending != "" && checkable:
		res.Checked = false
		res.Problem = fmt.Sprintf("marked pending (%s), but %s is now rendered with policies: remove \"pending\" so the flow is checked", f.Pending, ends)
		return res
	case f.Pending != "":
		return res // recorded, skipped
	case !checkable:
		res.Problem = fmt.Sprintf("no rendered manifest creates or sets policy in %s, so nothing here can allow or deny this flow: mark it pending with the reason", ends)
		return res
	}
	res.Checked = true
	got, explain, err := c.Evaluate(f)
	if err != nil {
		res.Problem = err.Error()
		return res
	}
	res.Got, res.Explain = got, explain
	if got != f.Expect {
		res.Problem = fmt.Sprintf("expected %s, got %s (%s)", f.Expect, got, explain)
	}
	return res
}

// Evaluate asks cyclonus whether the policies allow the flow: egress from the
// source and ingress to the destination must both allow it. It returns the
// verdict and which policies decided.
func (c *Cluster) Evaluate(f Flow) (v Verdict, explain string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("cyclonus failed on this flow: %v", p)
		}
	}()
	dst, dstTmpl := c.peer(f.To)
	src, _ := c.peer(f.From)
	traffic := &matcher.Traffic{
		Source:       src,
		Destination:  dst,
		ResolvedPort: int(f.Port),
		Protocol:     corev1.Protocol(f.Protocol),
	}
	if dstTmpl != nil {
		for _, p := range dstTmpl.ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if p.ContainerPort == f.Port && string(proto) == f.Protocol {
				traffic.ResolvedPortName = p.Name
			}
		}
	}
	r := c.policy.IsTrafficAllowed(traffic)
	explain = "egress: " + direction(r.Egress, traffic, false) + "; ingress: " + direction(r.Ingress, traffic, true)
	if r.IsAllowed() {
		return Allow, explain, nil
	}
	return Deny, explain, nil
}

// direction explains one direction's result. cyclonus merges policies that
// select the same pods into one target, so the allowing policies are found by
// evaluating each of the merged policies on its own.
func direction(d *matcher.DirectionResult, t *matcher.Traffic, isIngress bool) string {
	role, subject, peer := "source", t.Source, t.Destination
	if isIngress {
		role, subject, peer = "destination", t.Destination, t.Source
	}
	switch {
	case subject.IsExternal():
		return "the " + role + " is outside the cluster"
	case len(d.AllowingTargets) > 0:
		var names []string
		for _, target := range d.AllowingTargets {
			for _, np := range target.SourceRules {
				ingress, egress := matcher.BuildTarget(np)
				one := egress
				if isIngress {
					one = ingress
				}
				if one != nil && one.Allows(peer, t.ResolvedPort, t.ResolvedPortName, t.Protocol) {
					names = append(names, np.Namespace+"/"+np.Name)
				}
			}
		}
		slices.Sort(names)
		return "allowed by " + strings.Join(slices.Compact(names), ", ")
	case len(d.DenyingTargets) > 0:
		return "denied: " + policyNames(d.DenyingTargets) + " select the " + role + " and none allows this"
	default:
		return "no policy selects the " + role + ", so it is open"
	}
}

func policyNames(ts []*matcher.Target) string {
	var names []string
	for _, t := range ts {
		for _, np := range t.SourceRules {
			names = append(names, np.Namespace+"/"+np.Name)
		}
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ", ")
}

// peer builds cyclonus' view of a flow end. A pod's labels are completed from
// a rendered pod template in its namespace that carries all of them (the first
// by reference), which is returned too; its namespace has the automatic
// kubernetes.io/metadata.name label plus the rendered Namespace's labels.
func (c *Cluster) peer(p Peer) (*matcher.TrafficPeer, *podTemplate) {
	if p.External() {
		return &matcher.TrafficPeer{IP: p.IP}, nil
	}
	nsLabels := maps.Clone(c.nsLabels[p.Namespace])
	if nsLabels == nil {
		nsLabels = map[string]string{}
	}
	nsLabels[NamespaceNameLabel] = p.Namespace
	podLabels := maps.Clone(p.Labels)
	var tmpl *podTemplate
	candidates := slices.Clone(c.pods)
	slices.SortFunc(candidates, func(a, b podTemplate) int { return strings.Compare(a.ref, b.ref) })
	for i := range candidates {
		t := candidates[i]
		if t.namespace == p.Namespace && labelsInclude(t.labels, p.Labels) {
			tmpl = &t
			for k, v := range t.labels {
				podLabels[k] = v
			}
			break
		}
	}
	ip := p.IP
	if ip == "" {
		ip = syntheticPodIP(p)
	}
	return &matcher.TrafficPeer{
		IP: ip,
		Internal: &matcher.InternalPeer{
			Namespace:       p.Namespace,
			NamespaceLabels: nsLabels,
			PodLabels:       podLabels,
		},
	}, tmpl
}

func labelsInclude(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// syntheticPodIP gives a pod a stable address in 10.244.0.0/16 (a common pod
// CIDR), so ipBlock rules see pod traffic as most CNIs present it.
func syntheticPodIP(p Peer) string {
	h := fnv.New32a()
	h.Write([]byte(p.Namespace + "/" + labelString(p.Labels)))
	n := h.Sum32()
	return fmt.Sprintf("10.244.%d.%d", (n>>8)&0xff, n&0xff|1)
}
