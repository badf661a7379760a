// Package admission turns Kyverno ValidatingPolicies (policies.kyverno.io/v1)
// into Kubernetes ValidatingAdmissionPolicies and bindings, so a plain
// kube-apiserver (envtest in our tests) enforces the very same CEL rules at
// admission. One source of truth: the policy files under
// infrastructure/policies/kyverno; nothing here restates a rule.
//
// The mapping is the one Kyverno itself uses when it generates admission
// policies: matchConstraints, matchConditions, variables, validations,
// auditAnnotations and failurePolicy have the same schema in both APIs;
// validationActions moves to the binding. A Kyverno PolicyException that
// names the policy becomes a negated match condition with the exception's own
// CEL, so excepted requests are not evaluated.
package admission

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Derived is the admission policy and binding made from one ValidatingPolicy.
type Derived struct {
	Policy  *unstructured.Unstructured
	Binding *unstructured.Unstructured
}

// copied are the spec fields shared by ValidatingPolicy and
// ValidatingAdmissionPolicy.
var copied = []string{"matchConstraints", "matchConditions", "variables", "validations", "auditAnnotations", "failurePolicy", "paramKind"}

// FromKyverno derives admission policies from every ValidatingPolicy in objs,
// applying the PolicyExceptions found there.
func FromKyverno(objs []*unstructured.Unstructured) ([]Derived, error) {
	exceptions := map[string][]string{} // policy name -> negated conditions
	for _, o := range objs {
		if o.GetKind() != "PolicyException" || !strings.HasPrefix(o.GetAPIVersion(), "policies.kyverno.io/") {
			continue
		}
		cond, err := exceptionCondition(o)
		if err != nil {
			return nil, err
		}
		refs, _, _ := unstructured.NestedSlice(o.Object, "spec", "policyRefs")
		for _, r := range refs {
			ref, _ := r.(map[string]any)
			if kind, _ := ref["kind"].(string); kind != "" && kind != "ValidatingPolicy" {
				continue
			}
			name, _ := ref["name"].(string)
			exceptions[name] = append(exceptions[name], cond)
		}
	}
	var out []Derived
	for _, o := range objs {
		if o.GetKind() != "ValidatingPolicy" || !strings.HasPrefix(o.GetAPIVersion(), "policies.kyverno.io/") {
			continue
		}
		d, err := derive(o, exceptions[o.GetName()])
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Policy.GetName() < out[j].Policy.GetName() })
	return out, nil
}

// exceptionCondition is "not excepted": the negation of all of the
// exception's match conditions.
func exceptionCondition(o *unstructured.Unstructured) (string, error) {
	conds, _, _ := unstructured.NestedSlice(o.Object, "spec", "matchConditions")
	if len(conds) == 0 {
		return "", fmt.Errorf("PolicyException %s/%s: no spec.matchConditions; only CEL-matched exceptions can be mapped to admission policies", o.GetNamespace(), o.GetName())
	}
	var parts []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		expr, _ := m["expression"].(string)
		if strings.TrimSpace(expr) == "" {
			return "", fmt.Errorf("PolicyException %s/%s: a match condition has no expression", o.GetNamespace(), o.GetName())
		}
		parts = append(parts, "("+expr+")")
	}
	return "!(" + strings.Join(parts, " && ") + ")", nil
}

func derive(vp *unstructured.Unstructured, notExcepted []string) (Derived, error) {
	name := vp.GetName()
	spec := map[string]any{}
	for _, f := range copied {
		if v, found, _ := unstructured.NestedFieldCopy(vp.Object, "spec", f); found {
			spec[f] = v
		}
	}
	if _, ok := spec["validations"]; !ok {
		return Derived{}, fmt.Errorf("ValidatingPolicy %s: spec.validations is empty", name)
	}
	if _, ok := spec["matchConstraints"]; !ok {
		return Derived{}, fmt.Errorf("ValidatingPolicy %s: spec.matchConstraints is required for an admission policy", name)
	}
	if _, ok := spec["failurePolicy"]; !ok {
		spec["failurePolicy"] = "Fail"
	}
	conds, _ := spec["matchConditions"].([]any)
	for i, c := range notExcepted {
		conds = append(conds, map[string]any{"name": fmt.Sprintf("not-excepted-%d", i), "expression": c})
	}
	if len(conds) > 0 {
		spec["matchConditions"] = conds
	}
	actions, found, _ := unstructured.NestedStringSlice(vp.Object, "spec", "validationActions")
	if !found || len(actions) == 0 {
		return Derived{}, fmt.Errorf("ValidatingPolicy %s: spec.validationActions is not set; say Deny or Audit explicitly", name)
	}
	policy := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1",
		"kind":       "ValidatingAdmissionPolicy",
		"metadata":   map[string]any{"name": name, "labels": map[string]any{"policies.ml-platform.io/derived-from": "kyverno"}},
		"spec":       spec,
	}}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1",
		"kind":       "ValidatingAdmissionPolicyBinding",
		"metadata":   map[string]any{"name": name, "labels": map[string]any{"policies.ml-platform.io/derived-from": "kyverno"}},
		"spec": map[string]any{
			"policyName":        name,
			"validationActions": toAny(actions),
		},
	}}
	return Derived{Policy: policy, Binding: binding}, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
