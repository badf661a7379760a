package testcluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Workload names a Deployment, StatefulSet, DaemonSet or (Argo) Rollout.
type Workload struct {
	Kind      string
	Namespace string
	Name      string
}

func (w Workload) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// rolloutGVK is the Argo Rollouts Rollout kind.
func rolloutGVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"}
}

// WaitReady waits until every workload has all the replicas it wants ready
// and updated (what `kubectl rollout status` waits for; for a Rollout,
// phase Healthy), or ctx ends. The error then says, per workload not ready,
// why not: its status and conditions, its pods that are not Ready grouped by
// reason (pending pods with the scheduler's message), and the Warning events
// of the workload, its ReplicaSets and pods. A Rollout that turns Degraded
// (aborted, or past its progress deadline) fails at once.
func (c *Cluster) WaitReady(ctx context.Context, workloads ...Workload) error {
	pending := slices.Clone(workloads)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var still []Workload
		for _, w := range pending {
			st, err := c.workloadState(ctx, w)
			if err == nil && st.fatal != nil {
				return fmt.Errorf("%s: %w\n%s", w, st.fatal, c.diagnose(w))
			}
			if err != nil || !st.ready {
				still = append(still, w)
			}
		}
		if len(still) == 0 {
			return nil
		}
		pending = still
		select {
		case <-ctx.Done():
			errs := []error{fmt.Errorf("%d of %d workloads not ready: %w", len(pending), len(workloads), ctx.Err())}
			for _, w := range pending {
				errs = append(errs, errors.New(c.diagnose(w)))
			}
			return errors.Join(errs...)
		case <-tick.C:
		}
	}
}

// state is what the wait knows of a workload.
type state struct {
	ready    bool
	fatal    error  // stop waiting: it will not become ready by itself
	summary  string // replica counts
	notes    []string
	uid      types.UID
	selector *metav1.LabelSelector
}

// workloadState reads a workload and judges it.
func (c *Cluster) workloadState(ctx context.Context, w Workload) (state, error) {
	key := types.NamespacedName{Namespace: w.Namespace, Name: w.Name}
	switch w.Kind {
	case "Deployment":
		var d appsv1.Deployment
		if err := c.Client.Get(ctx, key, &d); err != nil {
			return state{}, err
		}
		return deploymentState(&d), nil
	case "StatefulSet":
		var s appsv1.StatefulSet
		if err := c.Client.Get(ctx, key, &s); err != nil {
			return state{}, err
		}
		return statefulSetState(&s), nil
	case "DaemonSet":
		var d appsv1.DaemonSet
		if err := c.Client.Get(ctx, key, &d); err != nil {
			return state{}, err
		}
		return daemonSetState(&d), nil
	case "Rollout":
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(rolloutGVK())
		if err := c.Client.Get(ctx, key, u); err != nil {
			return state{}, err
		}
		return rolloutState(u)
	default:
		return state{}, fmt.Errorf("kind %q: WaitReady knows Deployment, StatefulSet, DaemonSet and Rollout", w.Kind)
	}
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func deploymentState(d *appsv1.Deployment) state {
	want := replicas(d.Spec.Replicas)
	s := d.Status
	st := state{uid: d.UID, selector: d.Spec.Selector,
		summary: fmt.Sprintf("%d/%d ready, %d updated, %d available, %d in all", s.ReadyReplicas, want, s.UpdatedReplicas, s.AvailableReplicas, s.Replicas)}
	for _, cond := range s.Conditions {
		if cond.Status != corev1.ConditionTrue || cond.Type == appsv1.DeploymentReplicaFailure {
			st.notes = append(st.notes, fmt.Sprintf("condition %s=%s %s: %s", cond.Type, cond.Status, cond.Reason, cond.Message))
		}
		if cond.Type == appsv1.DeploymentProgressing && cond.Reason == "ProgressDeadlineExceeded" {
			st.fatal = fmt.Errorf("progress deadline exceeded: %s", cond.Message)
		}
	}
	st.ready = d.Status.ObservedGeneration >= d.Generation &&
		s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want && s.ReadyReplicas == want
	return st
}

func statefulSetState(set *appsv1.StatefulSet) state {
	want := replicas(set.Spec.Replicas)
	s := set.Status
	st := state{uid: set.UID, selector: set.Spec.Selector,
		summary: fmt.Sprintf("%d/%d ready, %d updated, revision %s (want %s)", s.ReadyReplicas, want, s.UpdatedReplicas, s.CurrentRevision, s.UpdateRevision)}
	for _, cond := range s.Conditions {
		st.notes = append(st.notes, fmt.Sprintf("condition %s=%s %s: %s", cond.Type, cond.Status, cond.Reason, cond.Message))
	}
	updated := s.UpdateRevision == s.CurrentRevision
	if ru := set.Spec.UpdateStrategy.RollingUpdate; set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && ru != nil && ru.Partition != nil {
		updated = s.UpdatedReplicas >= want-*ru.Partition
	}
	st.ready = s.ObservedGeneration >= set.Generation && s.ReadyReplicas == want && s.AvailableReplicas == want && updated
	return st
}

func daemonSetState(d *appsv1.DaemonSet) state {
	s := d.Status
	st := state{uid: d.UID, selector: d.Spec.Selector,
		summary: fmt.Sprintf("%d/%d ready, %d updated, %d available (desired = nodes it fits)", s.NumberReady, s.DesiredNumberScheduled, s.UpdatedNumberScheduled, s.NumberAvailable)}
	for _, cond := range s.Conditions {
		st.notes = append(st.notes, fmt.Sprintf("condition %s=%s %s: %s", cond.Type, cond.Status, cond.Reason, cond.Message))
	}
	if s.NumberMisscheduled > 0 {
		st.notes = append(st.notes, fmt.Sprintf("%d pods on nodes they should not run on", s.NumberMisscheduled))
	}
	want := s.DesiredNumberScheduled
	st.ready = s.ObservedGeneration >= d.Generation && s.UpdatedNumberScheduled == want && s.NumberReady == want && s.NumberAvailable == want
	return st
}

// rolloutStatus is the part of an Argo Rollout's status the wait reads.
type rolloutStatus struct {
	Phase              string `json:"phase"`
	Message            string `json:"message"`
	ObservedGeneration string `json:"observedGeneration"`
	Replicas           int32  `json:"replicas"`
	ReadyReplicas      int32  `json:"readyReplicas"`
	UpdatedReplicas    int32  `json:"updatedReplicas"`
	Abort              bool   `json:"abort"`
	CurrentStepIndex   *int32 `json:"currentStepIndex"`
	StableRS           string `json:"stableRS"`
	CurrentPodHash     string `json:"currentPodHash"`
	Conditions         []struct {
		Type    string `json:"type"`
		Status  string `json:"status"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"conditions"`
}

// RolloutStatus reads the status of an Argo Rollout: its phase (Healthy,
// Progressing, Paused, Degraded), message, and whether it was aborted.
func (c *Cluster) RolloutStatus(ctx context.Context, namespace, name string) (phase, message string, aborted bool, err error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(rolloutGVK())
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, u); err != nil {
		return "", "", false, err
	}
	s, err := readRolloutStatus(u)
	return s.Phase, s.Message, s.Abort, err
}

func readRolloutStatus(u *unstructured.Unstructured) (rolloutStatus, error) {
	var s rolloutStatus
	raw, _, err := unstructured.NestedMap(u.Object, "status")
	if err != nil {
		return s, fmt.Errorf("Rollout %s/%s status: %w", u.GetNamespace(), u.GetName(), err)
	}
	if raw == nil {
		return s, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &s); err != nil {
		return s, fmt.Errorf("Rollout %s/%s status: %w", u.GetNamespace(), u.GetName(), err)
	}
	return s, nil
}

func rolloutState(u *unstructured.Unstructured) (state, error) {
	s, err := readRolloutStatus(u)
	if err != nil {
		return state{}, err
	}
	want, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	if !found {
		want = 1
	}
	st := state{uid: u.GetUID(),
		summary: fmt.Sprintf("phase %s, %d/%d ready, %d updated; %s", s.Phase, s.ReadyReplicas, want, s.UpdatedReplicas, s.Message)}
	if sel, ok, _ := unstructured.NestedMap(u.Object, "spec", "selector"); ok {
		var ls metav1.LabelSelector
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(sel, &ls); err == nil {
			st.selector = &ls
		}
	}
	for _, cond := range s.Conditions {
		st.notes = append(st.notes, fmt.Sprintf("condition %s=%s %s: %s", cond.Type, cond.Status, cond.Reason, cond.Message))
	}
	observed := s.ObservedGeneration == strconv.FormatInt(u.GetGeneration(), 10)
	if observed && s.Phase == "Degraded" {
		st.fatal = fmt.Errorf("degraded (aborted: %t): %s", s.Abort, s.Message)
	}
	st.ready = observed && s.Phase == "Healthy" && int64(s.ReadyReplicas) == want
	return st, nil
}

// diagnose says why a workload is not ready, reading the cluster afresh
// (the wait's context may be over).
func (c *Cluster) diagnose(w Workload) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	st, err := c.workloadState(ctx, w)
	if err != nil {
		fmt.Fprintf(&b, "%s: %v", w, err)
		return b.String()
	}
	fmt.Fprintf(&b, "%s: %s", w, st.summary)
	for _, n := range st.notes {
		fmt.Fprintf(&b, "\n  %s", n)
	}
	objects := map[string]bool{w.Kind + "/" + w.Name: true}
	if st.selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(st.selector)
		if err != nil {
			fmt.Fprintf(&b, "\n  selector: %v", err)
			return b.String()
		}
		var sets appsv1.ReplicaSetList
		if err := c.Client.List(ctx, &sets, client.InNamespace(w.Namespace), client.MatchingLabelsSelector{Selector: sel}); err == nil {
			for _, rs := range sets.Items {
				if metav1.IsControlledBy(&rs, &metav1.ObjectMeta{UID: st.uid}) {
					objects["ReplicaSet/"+rs.Name] = true
				}
			}
		}
		b.WriteString(c.describePods(ctx, w.Namespace, sel, objects))
	}
	b.WriteString(c.describeEvents(ctx, w.Namespace, objects))
	return b.String()
}

// describePods lists the selected pods that are not Ready, grouped by why.
func (c *Cluster) describePods(ctx context.Context, namespace string, sel labels.Selector, objects map[string]bool) string {
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return "\n  pods: " + err.Error()
	}
	byReason := map[string][]string{}
	for _, p := range pods.Items {
		objects["Pod/"+p.Name] = true
		if why := podNotReady(&p); why != "" {
			byReason[why] = append(byReason[why], p.Name)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n  pods: %d selected, %d not ready", len(pods.Items), countValues(byReason))
	reasons := make([]string, 0, len(byReason))
	for r := range byReason {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		names := byReason[r]
		sort.Strings(names)
		fmt.Fprintf(&b, "\n    %d pod(s) %s (e.g. %s)", len(names), r, names[0])
	}
	return b.String()
}

func countValues(m map[string][]string) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

// podNotReady says why a pod is not Ready ("" when it is).
func podNotReady(p *corev1.Pod) string {
	var ready, scheduled *corev1.PodCondition
	for i := range p.Status.Conditions {
		switch p.Status.Conditions[i].Type {
		case corev1.PodReady:
			ready = &p.Status.Conditions[i]
		case corev1.PodScheduled:
			scheduled = &p.Status.Conditions[i]
		}
	}
	if ready != nil && ready.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
		return ""
	}
	if p.DeletionTimestamp != nil {
		return "terminating"
	}
	if p.Spec.NodeName == "" {
		if scheduled != nil && scheduled.Status == corev1.ConditionFalse {
			return fmt.Sprintf("%s, %s: %s", p.Status.Phase, scheduled.Reason, scheduled.Message)
		}
		return fmt.Sprintf("%s, not scheduled yet (is kube-scheduler running?)", p.Status.Phase)
	}
	var waiting []string
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil {
			waiting = append(waiting, fmt.Sprintf("%s %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message))
		}
	}
	msg := fmt.Sprintf("%s on %s", p.Status.Phase, p.Spec.NodeName)
	if ready != nil && ready.Message != "" {
		msg += ", " + ready.Reason + ": " + ready.Message
	}
	if len(waiting) > 0 {
		msg += ", waiting: " + strings.Join(waiting, "; ")
	}
	return msg
}

// describeEvents lists the Warning events of the given objects, newest
// first, each reason and message once.
func (c *Cluster) describeEvents(ctx context.Context, namespace string, objects map[string]bool) string {
	var events corev1.EventList
	if err := c.Client.List(ctx, &events, client.InNamespace(namespace)); err != nil {
		return "\n  events: " + err.Error()
	}
	var warnings []corev1.Event
	for _, e := range events.Items {
		if e.Type == corev1.EventTypeWarning && objects[e.InvolvedObject.Kind+"/"+e.InvolvedObject.Name] {
			warnings = append(warnings, e)
		}
	}
	sort.Slice(warnings, func(i, j int) bool { return eventTime(warnings[i]).After(eventTime(warnings[j])) })
	var b strings.Builder
	seen := map[string]bool{}
	const limit = 8
	for _, e := range warnings {
		key := e.Reason + "\x00" + e.Message
		if seen[key] {
			continue
		}
		seen[key] = true
		if len(seen) > limit {
			fmt.Fprintf(&b, "\n    ... (more Warning events: kubectl get events -n %s)", namespace)
			break
		}
		if len(seen) == 1 {
			b.WriteString("\n  warning events:")
		}
		fmt.Fprintf(&b, "\n    %s %s: %s", e.InvolvedObject.Kind+"/"+e.InvolvedObject.Name, e.Reason, strings.TrimSpace(e.Message))
	}
	return b.String()
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	default:
		return e.CreationTimestamp.Time
	}
}
