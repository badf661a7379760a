package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/ml-platform/platform/internal/gitops"
	"github.com/ml-platform/platform/internal/render"
)

// podSecurityEvaluator is the upstream evaluator, the same code kube-apiserver
// runs for Pod Security Admission (k8s.io/pod-security-admission, the version
// of the API server that verify starts).
var podSecurityEvaluator = func() policy.Evaluator {
	e, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		panic("pod-security-admission: " + err.Error())
	}
	return e
}()

// PodSecurity evaluates every rendered pod template against the Pod Security
// Standard "restricted" (version latest) with the upstream evaluator, and
// requires every Namespace object, and every namespace an Application creates
// (CreateNamespace=true), to enforce it. A namespace listed in
// podSecurityExceptions is held to its listed level instead.
func PodSecurity(repo *gitops.Repository, r *Rendered) []Finding {
	var fs []Finding
	exceptions := map[string]gitops.PodSecurityException{}
	for i, e := range repo.PodSecurityExceptions {
		where := fmt.Sprintf("%s: podSecurityExceptions[%d]", gitops.ConfigFile, i)
		switch {
		case e.Namespace == "":
			fs = append(fs, Finding{Where: where, Message: "namespace is required"})
			continue
		case strings.TrimSpace(e.Reason) == "":
			fs = append(fs, Finding{Where: where, Message: fmt.Sprintf("the exception for namespace %q gives no reason", e.Namespace)})
		case e.Level != string(psaapi.LevelBaseline) && e.Level != string(psaapi.LevelPrivileged):
			fs = append(fs, Finding{Where: where, Message: fmt.Sprintf("level %q for namespace %q: must be baseline or privileged (restricted needs no exception)", e.Level, e.Namespace)})
		}
		exceptions[e.Namespace] = e
	}
	want := func(ns string) psaapi.Level {
		if e, ok := exceptions[ns]; ok && e.Reason != "" && (e.Level == string(psaapi.LevelBaseline) || e.Level == string(psaapi.LevelPrivileged)) {
			return psaapi.Level(e.Level)
		}
		return psaapi.LevelRestricted
	}
	for _, where := range r.Order {
		for _, o := range r.Objects[where] {
			report := func(format string, args ...any) {
				fs = append(fs, Finding{Where: where, Object: o.Ref(), Message: fmt.Sprintf(format, args...)})
			}
			switch {
			case o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1":
				checkNamespaceLevel(o.GetLabels(), want(o.GetName()), "label", report)
			case gitops.IsArgo(o.Unstructured, "Application"):
				opts, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "syncPolicy", "syncOptions")
				if !slices.Contains(opts, "CreateNamespace=true") {
					continue
				}
				ns, _, _ := unstructured.NestedString(o.Object, "spec", "destination", "namespace")
				labels, _, _ := unstructured.NestedStringMap(o.Object, "spec", "syncPolicy", "managedNamespaceMetadata", "labels")
				checkNamespaceLevel(labels, want(ns), "spec.syncPolicy.managedNamespaceMetadata.labels (CreateNamespace=true creates namespace "+ns+")", report)
			default:
				meta, spec, ok, err := podTemplate(o)
				if err != nil {
					report("pod security: cannot read the pod template: %v", err)
				}
				if !ok {
					continue
				}
				level := want(o.GetNamespace())
				lv := psaapi.LevelVersion{Level: level, Version: psaapi.LatestVersion()}
				for _, res := range podSecurityEvaluator.EvaluatePod(lv, meta, spec) {
					if res.Allowed {
						continue
					}
					msg := fmt.Sprintf("violates Pod Security %q (latest): %s", level, res.ForbiddenReason)
					if res.ForbiddenDetail != "" {
						msg += " (" + res.ForbiddenDetail + ")"
					}
					report("%s", msg)
				}
			}
		}
	}
	return fs
}

// checkPodSecurity is PodSecurity as a stage of verify.
func checkPodSecurity(_ context.Context, in *Inputs) ([]Finding, string, error) {
	n := 0
	for _, o := range in.Rendered.All() {
		if _, ok := podSpec(o.Unstructured); ok {
			n++
		}
	}
	return PodSecurity(in.Repo, in.Rendered), plural(n, "pod template", "pod templates") + " at \"restricted\" (latest), namespaces' enforce labels", nil
}

// podSpec finds the pod spec of a workload.
func podSpec(u *unstructured.Unstructured) (map[string]any, bool) {
	var path []string
	switch u.GetKind() {
	case "Pod":
		path = []string{"spec"}
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Rollout":
		path = []string{"spec", "template", "spec"}
	case "CronJob":
		path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
	default:
		return nil, false
	}
	spec, found, err := unstructured.NestedMap(u.Object, path...)
	return spec, found && err == nil
}

// checkNamespaceLevel: the enforce label names the wanted level (a missing
// label means privileged).
func checkNamespaceLevel(labels map[string]string, want psaapi.Level, field string, report func(string, ...any)) {
	got, ok := labels[psaapi.EnforceLevelLabel]
	switch {
	case !ok && want == psaapi.LevelPrivileged:
		// No label is privileged: what the exception allows.
	case !ok:
		report("%s %s=%s is missing: Pod Security Admission would not enforce anything here", field, psaapi.EnforceLevelLabel, want)
	case got != string(want):
		hint := ""
		if want == psaapi.LevelRestricted {
			hint = "; an exception needs an entry with a reason in podSecurityExceptions of " + gitops.ConfigFile
		}
		report("%s %s is %q, want %q%s", field, psaapi.EnforceLevelLabel, got, want, hint)
	}
}

// podTemplate returns the pod metadata and spec of a workload (the pod
// itself, or its template), typed for the evaluator.
func podTemplate(o render.Object) (*metav1.ObjectMeta, *corev1.PodSpec, bool, error) {
	spec, ok := podSpec(o.Unstructured)
	if !ok {
		return nil, nil, false, nil
	}
	var metaPath []string
	switch o.GetKind() {
	case "Pod":
		metaPath = []string{"metadata"}
	case "CronJob":
		metaPath = []string{"spec", "jobTemplate", "spec", "template", "metadata"}
	default:
		metaPath = []string{"spec", "template", "metadata"}
	}
	var ps corev1.PodSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &ps); err != nil {
		return nil, nil, false, err
	}
	var meta metav1.ObjectMeta
	if m, found, _ := unstructured.NestedMap(o.Object, metaPath...); found {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &meta); err != nil {
			return nil, nil, false, err
		}
	}
	return &meta, &ps, true, nil
}
