// Package rollout reads and drives Argo Rollouts' Rollout objects through
// the Kubernetes API, for `platformctl rollout status|promote|abort ENV`
// and the delivery tests: Get gathers what an operator asks during a canary
// (phase, step, which ReplicaSet is stable and which the canary, their pods,
// each analysis metric's measurements and the judge's reasons); Promote,
// Abort and Retry send the patches the kubectl-argo-rollouts plugin of the
// pinned release (v1.10.1, pkg/kubectl-argo-rollouts/cmd/{promote,abort,
// retry}) sends, so both tools do the same thing to a Rollout.
//
// It speaks to the API with unstructured objects: the Argo Rollouts Go
// module pins other Kubernetes libraries than this one (tools/README.md), so
// its types are not imported; the fields read here are a stable part of the
// v1alpha1 API.
package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The kinds this package reads.
var (
	RolloutGVK     = schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"}
	AnalysisRunGVK = schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "AnalysisRun"}
	replicaSetGVK  = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
)

// HashLabel is the label of the Rollouts controller's ReplicaSets and pods:
// their pod template hash (vmagent copies it to rollouts_pod_template_hash).
const HashLabel = "rollouts-pod-template-hash"

// Status is a Rollout as an operator reads it during a canary.
type Status struct {
	Namespace, Name string
	Phase           string // Healthy, Progressing, Paused, Degraded
	Message         string
	Aborted         bool
	// PauseReasons are why the controller holds the rollout (CanaryPauseStep,
	// InconclusiveAnalysis, ...); ControllerPause says the controller, not
	// spec.paused, paused it.
	PauseReasons    []string
	ControllerPause bool
	// Step is the index of the current canary step, Steps how many there
	// are; Step == Steps once every step is done. StepText describes the
	// current step ("setWeight 30", "pause 2m", "analysis ml-inference-judge").
	Step, Steps int
	StepText    string
	// StepTexts describe every step, in order.
	StepTexts []string
	// Replicas is spec.replicas; StableHash and CanaryHash the pod template
	// hashes (equal between rollouts).
	Replicas               int64
	StableHash, CanaryHash string
	ReplicaSets            []ReplicaSet
	// Analyses are the Rollout's AnalysisRuns of its current revision,
	// newest first.
	Analyses []Analysis
	// Generation and ObservedGeneration: the controller has seen the
	// latest spec when they are equal.
	Generation, ObservedGeneration int64
}

// ReplicaSet is one of the Rollout's ReplicaSets with pods.
type ReplicaSet struct {
	Name, Hash    string
	Role          string // stable, canary, or old
	Replicas      int64  // spec
	ReadyReplicas int64
}

// Analysis is one AnalysisRun.
type Analysis struct {
	Name    string
	Kind    string // background or step
	Phase   string // Pending, Running, Successful, Failed, Error, Inconclusive
	Message string
	Created time.Time
	Metrics []Metric
}

// Metric is one metric of an AnalysisRun and its measurements.
type Metric struct {
	Name                                     string
	Phase                                    string
	Successful, Failed, Inconclusive, Errors int
	Measurements                             []Measurement
}

// Measurement is one measurement of a metric.
type Measurement struct {
	Phase   string
	Value   string // as the provider returned it: a number, or the judge's JSON
	Message string
	At      time.Time // finishedAt (startedAt while it runs)
}

// Last is the metric's latest measurement (zero if none).
func (m Metric) Last() Measurement {
	if len(m.Measurements) == 0 {
		return Measurement{}
	}
	return m.Measurements[len(m.Measurements)-1]
}

// Get reads the Rollout namespace/name, its ReplicaSets and the
// AnalysisRuns of its current pod template hash.
func Get(ctx context.Context, c client.Reader, namespace, name string) (*Status, error) {
	ro := &unstructured.Unstructured{}
	ro.SetGroupVersionKind(RolloutGVK)
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, ro); err != nil {
		return nil, fmt.Errorf("rollout %s/%s: %w", namespace, name, err)
	}
	var doc rolloutDoc
	if err := fromUnstructured(ro, &doc); err != nil {
		return nil, fmt.Errorf("rollout %s/%s: %w", namespace, name, err)
	}
	st := doc.Status
	s := &Status{
		Namespace: namespace, Name: name,
		Phase: st.Phase, Message: st.Message, Aborted: st.Abort, ControllerPause: st.ControllerPause,
		Steps: len(doc.Spec.Strategy.Canary.Steps), StableHash: st.StableRS, CanaryHash: st.CurrentPodHash,
		Replicas: 1, Generation: ro.GetGeneration(),
	}
	if doc.Spec.Replicas != nil {
		s.Replicas = *doc.Spec.Replicas
	}
	s.ObservedGeneration, _ = strconv.ParseInt(st.ObservedGeneration, 10, 64)
	for _, pc := range st.PauseConditions {
		s.PauseReasons = append(s.PauseReasons, pc.Reason)
	}
	if st.CurrentStepIndex != nil {
		s.Step = *st.CurrentStepIndex
	}
	for _, step := range doc.Spec.Strategy.Canary.Steps {
		s.StepTexts = append(s.StepTexts, step.String())
	}
	if s.Step < s.Steps {
		s.StepText = s.StepTexts[s.Step]
	}
	if err := s.readReplicaSets(ctx, c, ro); err != nil {
		return nil, err
	}
	if err := s.readAnalyses(ctx, c, ro); err != nil {
		return nil, err
	}
	return s, nil
}

// Canary reports whether a canary is in progress: a new revision that is
// not the stable one yet.
func (s *Status) Canary() bool { return s.CanaryHash != "" && s.CanaryHash != s.StableHash }

func (s *Status) readReplicaSets(ctx context.Context, c client.Reader, ro *unstructured.Unstructured) error {
	var list unstructured.UnstructuredList
	list.SetGroupVersionKind(replicaSetGVK.GroupVersion().WithKind("ReplicaSetList"))
	if err := c.List(ctx, &list, client.InNamespace(s.Namespace)); err != nil {
		return fmt.Errorf("rollout %s/%s: ReplicaSets: %w", s.Namespace, s.Name, err)
	}
	for _, rs := range list.Items {
		if !ownedBy(&rs, ro) {
			continue
		}
		replicas, _, _ := unstructured.NestedInt64(rs.Object, "spec", "replicas")
		ready, _, _ := unstructured.NestedInt64(rs.Object, "status", "readyReplicas")
		if replicas == 0 && ready == 0 {
			continue
		}
		r := ReplicaSet{Name: rs.GetName(), Hash: rs.GetLabels()[HashLabel], Replicas: replicas, ReadyReplicas: ready, Role: "old"}
		switch r.Hash {
		case s.StableHash:
			r.Role = "stable"
		case s.CanaryHash:
			r.Role = "canary"
		}
		s.ReplicaSets = append(s.ReplicaSets, r)
	}
	slices.SortFunc(s.ReplicaSets, func(a, b ReplicaSet) int { return strings.Compare(a.Role, b.Role) })
	return nil
}

func (s *Status) readAnalyses(ctx context.Context, c client.Reader, ro *unstructured.Unstructured) error {
	var list unstructured.UnstructuredList
	list.SetGroupVersionKind(AnalysisRunGVK.GroupVersion().WithKind("AnalysisRunList"))
	if err := c.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabels{HashLabel: s.CanaryHash}); err != nil {
		return fmt.Errorf("rollout %s/%s: AnalysisRuns: %w", s.Namespace, s.Name, err)
	}
	for i := range list.Items {
		run := &list.Items[i]
		if !ownedBy(run, ro) {
			continue
		}
		a, err := ReadAnalysis(run)
		if err != nil {
			return err
		}
		s.Analyses = append(s.Analyses, a)
	}
	slices.SortFunc(s.Analyses, func(a, b Analysis) int { return b.Created.Compare(a.Created) })
	return nil
}

// ReadAnalysis reads one AnalysisRun.
func ReadAnalysis(run *unstructured.Unstructured) (Analysis, error) {
	var doc analysisRunDoc
	if err := fromUnstructured(run, &doc); err != nil {
		return Analysis{}, fmt.Errorf("AnalysisRun %s/%s: %w", run.GetNamespace(), run.GetName(), err)
	}
	a := Analysis{Name: run.GetName(), Kind: "step", Phase: doc.Status.Phase, Message: doc.Status.Message, Created: run.GetCreationTimestamp().Time}
	if run.GetLabels()["rollout-type"] == "Background" {
		a.Kind = "background"
	}
	for _, mr := range doc.Status.MetricResults {
		m := Metric{Name: mr.Name, Phase: mr.Phase, Successful: mr.Successful, Failed: mr.Failed, Inconclusive: mr.Inconclusive, Errors: mr.Error}
		for _, ms := range mr.Measurements {
			at := ms.FinishedAt
			if at.IsZero() {
				at = ms.StartedAt
			}
			m.Measurements = append(m.Measurements, Measurement{Phase: ms.Phase, Value: ms.Value, Message: ms.Message, At: at})
		}
		a.Metrics = append(a.Metrics, m)
	}
	return a, nil
}

func ownedBy(obj, owner *unstructured.Unstructured) bool {
	return slices.ContainsFunc(obj.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.UID == owner.GetUID() })
}

// Promote moves a paused canary on, as `kubectl argo rollouts promote` does:
// it clears the pause conditions (a pause step, or an inconclusive
// analysis: then also the controller's pause, stepping past the
// inconclusive analysis step), or, with full, skips every remaining step and
// analysis and goes to 100% at once.
func Promote(ctx context.Context, c client.Client, namespace, name string, full bool) error {
	ro := &unstructured.Unstructured{}
	ro.SetGroupVersionKind(RolloutGVK)
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, ro); err != nil {
		return fmt.Errorf("rollout %s/%s: %w", namespace, name, err)
	}
	var doc rolloutDoc
	if err := fromUnstructured(ro, &doc); err != nil {
		return fmt.Errorf("rollout %s/%s: %w", namespace, name, err)
	}
	spec, status := promotePatches(doc, full)
	if status != nil {
		if err := c.Status().Patch(ctx, ro, client.RawPatch(types.MergePatchType, status)); err != nil {
			return fmt.Errorf("promote %s/%s: %w", namespace, name, err)
		}
	}
	if spec != nil {
		if err := c.Patch(ctx, ro, client.RawPatch(types.MergePatchType, spec)); err != nil {
			return fmt.Errorf("promote %s/%s: %w", namespace, name, err)
		}
	}
	return nil
}

// promotePatches are the plugin's patches (getPatches in v1.10.1's
// pkg/kubectl-argo-rollouts/cmd/promote): a spec patch and a status patch,
// either nil.
func promotePatches(doc rolloutDoc, full bool) (spec, status []byte) {
	st := doc.Status
	steps := len(doc.Spec.Strategy.Canary.Steps)
	if doc.Spec.Paused {
		spec = []byte(`{"spec":{"paused":false}}`)
	}
	if full {
		if st.CurrentPodHash != st.StableRS {
			status = []byte(`{"status":{"promoteFull":true}}`)
		}
		return spec, status
	}
	next := 0
	if st.CurrentStepIndex != nil {
		next = *st.CurrentStepIndex
	}
	if next < steps {
		next++
	}
	inconclusiveStep := st.Canary.CurrentStepAnalysisRunStatus != nil && st.Canary.CurrentStepAnalysisRunStatus.Status == "Inconclusive"
	switch {
	case inconclusiveStep && len(st.PauseConditions) > 0 && st.ControllerPause:
		status = fmt.Appendf(nil, `{"status":{"pauseConditions":null,"controllerPause":false,"currentStepIndex":%d}}`, next)
	case len(st.PauseConditions) > 0:
		status = []byte(`{"status":{"pauseConditions":null}}`)
	case steps > 0:
		status = fmt.Appendf(nil, `{"status":{"pauseConditions":null,"currentStepIndex":%d}}`, next)
	}
	return spec, status
}

// Abort stops a canary and sends every pod back to the stable version, as
// `kubectl argo rollouts abort` does. The pod template in Git still names
// the new version: revert the Git change to end the canary for good.
func Abort(ctx context.Context, c client.Client, namespace, name string) error {
	return patchStatus(ctx, c, "abort", namespace, name, `{"status":{"abort":true}}`)
}

// Retry starts an aborted canary again from its first step, as
// `kubectl argo rollouts retry rollout` does.
func Retry(ctx context.Context, c client.Client, namespace, name string) error {
	return patchStatus(ctx, c, "retry", namespace, name, `{"status":{"abort":false}}`)
}

func patchStatus(ctx context.Context, c client.Client, verb, namespace, name, patch string) error {
	ro := &unstructured.Unstructured{}
	ro.SetGroupVersionKind(RolloutGVK)
	ro.SetNamespace(namespace)
	ro.SetName(name)
	err := c.Status().Patch(ctx, ro, client.RawPatch(types.MergePatchType, []byte(patch)))
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: rollout %s/%s does not exist", verb, namespace, name)
	}
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", verb, namespace, name, err)
	}
	return nil
}

// The parts of the Argo Rollouts documents this package reads.
type (
	rolloutDoc struct {
		Spec struct {
			Replicas *int64 `json:"replicas"`
			Paused   bool   `json:"paused"`
			Strategy struct {
				Canary struct {
					Steps []step `json:"steps"`
				} `json:"canary"`
			} `json:"strategy"`
		} `json:"spec"`
		Status struct {
			Phase              string `json:"phase"`
			Message            string `json:"message"`
			Abort              bool   `json:"abort"`
			ControllerPause    bool   `json:"controllerPause"`
			CurrentStepIndex   *int   `json:"currentStepIndex"`
			CurrentPodHash     string `json:"currentPodHash"`
			StableRS           string `json:"stableRS"`
			ObservedGeneration string `json:"observedGeneration"`
			PauseConditions    []struct {
				Reason string `json:"reason"`
			} `json:"pauseConditions"`
			Canary struct {
				CurrentStepAnalysisRunStatus *struct {
					Name   string `json:"name"`
					Status string `json:"status"`
				} `json:"currentStepAnalysisRunStatus"`
			} `json:"canary"`
		} `json:"status"`
	}
	step struct {
		SetWeight *int `json:"setWeight"`
		Pause     *struct {
			Duration json.RawMessage `json:"duration"`
		} `json:"pause"`
		Analysis *struct {
			Templates []struct {
				TemplateName string `json:"templateName"`
			} `json:"templates"`
		} `json:"analysis"`
	}
	analysisRunDoc struct {
		Status struct {
			Phase         string `json:"phase"`
			Message       string `json:"message"`
			MetricResults []struct {
				Name         string `json:"name"`
				Phase        string `json:"phase"`
				Successful   int    `json:"successful"`
				Failed       int    `json:"failed"`
				Inconclusive int    `json:"inconclusive"`
				Error        int    `json:"error"`
				Measurements []struct {
					Phase      string    `json:"phase"`
					Value      string    `json:"value"`
					Message    string    `json:"message"`
					StartedAt  time.Time `json:"startedAt"`
					FinishedAt time.Time `json:"finishedAt"`
				} `json:"measurements"`
			} `json:"metricResults"`
		} `json:"status"`
	}
)

func (s step) String() string {
	switch {
	case s.SetWeight != nil:
		return "setWeight " + strconv.Itoa(*s.SetWeight)
	case s.Pause != nil:
		d := strings.Trim(string(s.Pause.Duration), `"`)
		if d == "" || d == "null" {
			return "pause (until promoted)"
		}
		return "pause " + d
	case s.Analysis != nil:
		var names []string
		for _, t := range s.Analysis.Templates {
			names = append(names, t.TemplateName)
		}
		return "analysis " + strings.Join(names, ", ")
	}
	return "another step"
}

func fromUnstructured(u *unstructured.Unstructured, v any) error {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return errors.New("unexpected shape: " + err.Error())
	}
	return nil
}
