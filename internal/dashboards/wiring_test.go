package dashboards

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/render"
)

// TestGrafanaMountsEveryDashboard renders the observability stack with the
// kustomize API and checks that Grafana's grafana-dashboards ConfigMap holds
// exactly the generated dashboards, byte for byte: a new dashboard that is
// not listed in the kustomization's configMapGenerator would be generated,
// committed and never shown.
func TestGrafanaMountsEveryDashboard(t *testing.T) {
	objs, err := render.Build(filepath.Join("..", "..", "infrastructure", "base", "observability"))
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]string
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "grafana-dashboards-") {
			data = map[string]string{}
			raw, _ := o.Object["data"].(map[string]any)
			for k, v := range raw {
				data[k], _ = v.(string)
			}
		}
	}
	if data == nil {
		t.Fatal("infrastructure/base/observability renders no grafana-dashboards ConfigMap")
	}
	var want, got []string
	for _, f := range generate(t) {
		want = append(want, f.Name)
		if data[f.Name] != string(f.Data) {
			t.Errorf("grafana-dashboards[%s] differs from the generated dashboard (missing from the configMapGenerator, or stale: run make dashboards)", f.Name)
		}
	}
	for k := range data {
		got = append(got, k)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Errorf("grafana-dashboards holds %v; the generated dashboards are %v: list exactly those in infrastructure/base/observability/kustomization.yaml", got, want)
	}
}
