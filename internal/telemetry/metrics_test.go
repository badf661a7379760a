package telemetry

import (
	"slices"
	"strings"
	"testing"
)

// TestInstrumentsMatchTheRegistry: what Instruments declares (name, type,
// labels) is what the registry gathers once every vector has a child, and
// every family the registry gathers besides the Go and process collectors is
// declared.
func TestInstrumentsMatchTheRegistry(t *testing.T) {
	m := NewMetrics(BuildInfo{Version: "v", Revision: "r"})
	m.Requests.WithLabelValues("/predict", "200", "v1").Inc()
	m.Duration.WithLabelValues("/predict", "v1").Observe(0.1)
	m.ModelDuration.WithLabelValues("v1").Observe(0.001)
	m.Predictions.WithLabelValues("v1", "positive").Inc()
	m.Reloads.WithLabelValues("success").Inc()
	m.TrafficWeight.WithLabelValues("v1").Set(100)
	m.SetVersionInfo([]VersionLabels{{Version: "v3", ArtifactVersion: "v3", Kind: "hashed-logreg", RegistryVersion: "3", Aliases: "production", Source: "mlflow"}})
	m.Feedback.WithLabelValues("v1", "correct", "split").Inc()
	m.FeedbackRefused.WithLabelValues("replay").Inc()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]Instrument{}
	for _, in := range m.Instruments() {
		declared[in.Name] = in
	}
	seen := 0
	for _, f := range families {
		name := f.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		in, ok := declared[name]
		if !ok {
			t.Errorf("%s is gathered but not declared in Instruments", name)
			continue
		}
		seen++
		if got := strings.ToLower(f.GetType().String()); got != in.Type {
			t.Errorf("%s: declared %s, gathered %s", name, in.Type, got)
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		if !slices.Equal(slices.Sorted(slices.Values(labels)), slices.Sorted(slices.Values(in.Labels))) {
			t.Errorf("%s: declared labels %v, gathered %v", name, in.Labels, labels)
		}
	}
	if seen != len(declared) {
		t.Errorf("%d declared instruments, %d gathered: a declared instrument is not registered", len(declared), seen)
	}
}
