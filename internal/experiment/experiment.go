// Package experiment reads A/B experiments as code: one file per experiment,
// config/experiments/<name>.yaml, with its hypothesis, the control and
// treatment model versions, the traffic split, the primary metric (accuracy
// from user feedback) and its minimum detectable effect, alpha, power, the
// maximum duration and the guardrails. Decoding is strict, and every error
// names the file and the field. Design turns a spec into what
// internal/abtest decides with.
package experiment

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	prommodel "github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/abtest"
	"github.com/ml-platform/platform/internal/model"
	"github.com/ml-platform/platform/internal/telemetry"
)

// Dir is where the experiments live, relative to the repository root.
const Dir = "config/experiments"

// Spec is one experiment file.
type Spec struct {
	// Name is the file's base name; a "name" field, if given, must equal it.
	Name       string  `json:"name,omitempty"`
	Hypothesis string  `json:"hypothesis"`
	Owner      string  `json:"owner,omitempty"`
	Control    string  `json:"control"`   // model version
	Treatment  string  `json:"treatment"` // model version
	Split      Split   `json:"split"`
	Primary    Primary `json:"primaryMetric"`
	Alpha      float64 `json:"alpha"`
	Power      float64 `json:"power"`
	// MaxDur is a Prometheus-style duration ("14d", "36h").
	MaxDur     string     `json:"maxDuration"`
	Guardrails Guardrails `json:"guardrails"`

	// Path is the file it was read from.
	Path string `json:"-"`

	maxDuration time.Duration
}

// Split is the percentage of unpinned traffic each arm gets; they add to 100.
type Split struct {
	Control   int `json:"control"`
	Treatment int `json:"treatment"`
}

// Primary is the metric the experiment decides on.
type Primary struct {
	// Metric is "accuracy": correct / all feedback events, from
	// model_feedback_total{routing="split"}. It is the only one.
	Metric string `json:"metric"`
	// Baseline is the control's expected accuracy, which plans the sample.
	Baseline float64 `json:"baseline"`
	// MinimumDetectableEffect is the smallest absolute accuracy lift worth
	// detecting (0.03: three points).
	MinimumDetectableEffect float64 `json:"minimumDetectableEffect"`
}

// Guardrails are what the treatment may not be worse on.
type Guardrails struct {
	ServerErrors ErrorGuardrail   `json:"serverErrors"`
	Latency      LatencyGuardrail `json:"latency"`
}

// ErrorGuardrail: the treatment's share of inference requests answered 5xx
// may not exceed (1 + RelativeMargin) times the control's.
type ErrorGuardrail struct {
	RelativeMargin *float64 `json:"relativeMargin"`
}

// LatencyGuardrail: the treatment's share of inference requests slower than
// ThresholdSeconds may not exceed (1 + RelativeMargin) times the control's.
// With the threshold at the control's p95 this is the p95 guardrail: a
// treatment whose p95 is above it has more than 5% of its requests there.
type LatencyGuardrail struct {
	// ThresholdSeconds must be a bucket bound of
	// inference_request_duration_seconds, so counts are exact.
	ThresholdSeconds float64  `json:"thresholdSeconds"`
	RelativeMargin   *float64 `json:"relativeMargin"`
}

// MaxDuration is the longest the experiment may run.
func (s *Spec) MaxDuration() time.Duration { return s.maxDuration }

// Load reads and validates one experiment file.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read experiment: %w", err)
	}
	var s Spec
	if err := yaml.UnmarshalStrict(bytes.TrimSpace(data), &s); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if s.Name != "" && s.Name != base {
		return nil, fmt.Errorf("%s: field \"name\" is %q; it must be the file's name, %q", path, s.Name, base)
	}
	s.Name, s.Path = base, path
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// Find loads the experiment called name from dir (dir/name.yaml).
func Find(dir, name string) (*Spec, error) {
	if !validName(name) {
		return nil, fmt.Errorf("experiment name %q: use lower-case letters, digits and dashes", name)
	}
	path := filepath.Join(dir, name+".yaml")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		known, _ := names(dir)
		return nil, fmt.Errorf("no experiment %q: %s does not exist (experiments in %s: %s)", name, path, dir, strings.Join(known, ", "))
	}
	return Load(path)
}

// LoadAll reads every experiment in dir.
func LoadAll(dir string) ([]*Spec, error) {
	ns, err := names(dir)
	if err != nil {
		return nil, err
	}
	var out []*Spec
	var errs []error
	for _, n := range ns {
		s, err := Load(filepath.Join(dir, n+".yaml"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

func names(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read experiments: %w", err)
	}
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && !e.IsDir() {
			out = append(out, n)
		}
	}
	return out, nil
}

func validName(n string) bool {
	if n == "" || len(n) > 63 || n[0] == '-' || n[len(n)-1] == '-' {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Spec) validate() error {
	field := func(name, format string, args ...any) error {
		return fmt.Errorf("field %q: %s", name, fmt.Sprintf(format, args...))
	}
	lg := s.Guardrails.Latency
	switch {
	case !validName(s.Name):
		return fmt.Errorf("the file name %q must be lower-case letters, digits and dashes", s.Name)
	case strings.TrimSpace(s.Hypothesis) == "":
		return field("hypothesis", "is required: say what the treatment should change and why")
	case !model.ValidVersion(s.Control):
		return field("control", "%q is not a model version name", s.Control)
	case !model.ValidVersion(s.Treatment):
		return field("treatment", "%q is not a model version name", s.Treatment)
	case s.Control == s.Treatment:
		return field("treatment", "%q is also the control", s.Treatment)
	case s.Split.Control < 1 || s.Split.Treatment < 1 || s.Split.Control+s.Split.Treatment != 100:
		return field("split", "control %d and treatment %d must each be at least 1 and add up to 100 (percent)", s.Split.Control, s.Split.Treatment)
	case s.Primary.Metric != "accuracy":
		return field("primaryMetric.metric", "%q: the only metric is \"accuracy\" (correct feedback / all feedback)", s.Primary.Metric)
	case !(s.Primary.Baseline > 0 && s.Primary.Baseline < 1):
		return field("primaryMetric.baseline", "%v must be the control's expected accuracy, in (0, 1)", s.Primary.Baseline)
	case !(s.Primary.MinimumDetectableEffect > 0 && s.Primary.Baseline+s.Primary.MinimumDetectableEffect < 1):
		return field("primaryMetric.minimumDetectableEffect", "%v must be an absolute lift > 0 with baseline + lift < 1", s.Primary.MinimumDetectableEffect)
	case !(s.Alpha > 0 && s.Alpha <= 0.2):
		return field("alpha", "%v must be in (0, 0.2]", s.Alpha)
	case !(s.Power >= 0.5 && s.Power < 1):
		return field("power", "%v must be in [0.5, 1)", s.Power)
	case s.MaxDur == "":
		return field("maxDuration", "is required, e.g. \"14d\"")
	case s.Guardrails.ServerErrors.RelativeMargin == nil:
		return field("guardrails.serverErrors.relativeMargin", "is required (0.5: the treatment's 5xx rate may be at most 1.5 times the control's)")
	case *s.Guardrails.ServerErrors.RelativeMargin < 0:
		return field("guardrails.serverErrors.relativeMargin", "%v must be >= 0", *s.Guardrails.ServerErrors.RelativeMargin)
	case lg.RelativeMargin == nil:
		return field("guardrails.latency.relativeMargin", "is required (0.5: the treatment's share of slow requests may be at most 1.5 times the control's)")
	case *lg.RelativeMargin < 0:
		return field("guardrails.latency.relativeMargin", "%v must be >= 0", *lg.RelativeMargin)
	case !slices.Contains(telemetry.LatencyBuckets, lg.ThresholdSeconds):
		return field("guardrails.latency.thresholdSeconds", "%v must be a bucket bound of inference_request_duration_seconds: one of %v", lg.ThresholdSeconds, telemetry.LatencyBuckets)
	}
	d, err := prommodel.ParseDuration(s.MaxDur)
	if err != nil || d <= 0 {
		return field("maxDuration", "%q is not a duration such as \"14d\" or \"36h\"", s.MaxDur)
	}
	s.maxDuration = time.Duration(d)
	if _, err := abtest.NewAnalyzer(s.Design()); err != nil {
		return err
	}
	return nil
}

// Design is what internal/abtest decides the experiment with.
func (s *Spec) Design() abtest.Design {
	d := abtest.Design{
		Alpha:    s.Alpha,
		Power:    s.Power,
		MDE:      s.Primary.MinimumDetectableEffect,
		Baseline: s.Primary.Baseline,
		Split:    [2]float64{float64(s.Split.Control), float64(s.Split.Treatment)},
		Guardrails: abtest.Guardrails{
			LatencyThreshold: s.Guardrails.Latency.ThresholdSeconds,
		},
	}
	if m := s.Guardrails.ServerErrors.RelativeMargin; m != nil {
		d.Guardrails.ErrorMargin = *m
	}
	if m := s.Guardrails.Latency.RelativeMargin; m != nil {
		d.Guardrails.LatencyMargin = *m
	}
	return d
}

// Traffic is the split as ml-inference's --traffic reads it.
func (s *Spec) Traffic() string {
	return fmt.Sprintf("%s=%d,%s=%d", s.Control, s.Split.Control, s.Treatment, s.Split.Treatment)
}
