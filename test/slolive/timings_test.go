package slolive

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/render"
)

// productionTimings reads the pipeline's intervals from the rendered stack,
// so SLOLIVE_TIMINGS=production measures what the cluster runs.
func productionTimings(t *testing.T) timings {
	t.Helper()
	objs, err := render.Build(filepath.Join(repoRoot, "infrastructure", "base", "observability"))
	if err != nil {
		t.Fatal(err)
	}
	tm := timings{name: "production"}
	var latencyOffset time.Duration
	flag := func(o render.Object, name string) time.Duration {
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			args, _ := c.(map[string]any)["args"].([]any)
			for _, a := range args {
				if v, ok := strings.CutPrefix(a.(string), "-"+name+"="); ok {
					d, err := time.ParseDuration(v)
					if err != nil {
						t.Fatalf("%s: -%s=%s: %v", o.Ref(), name, v, err)
					}
					return d
				}
			}
		}
		t.Fatalf("%s sets no -%s: the live run's production timings come from the manifests", o.Ref(), name)
		return 0
	}
	for _, o := range objs {
		switch {
		case o.GetKind() == "Deployment" && o.GetName() == "vmalert":
			tm.eval = flag(o, "evaluationInterval")
			tm.evalDelay = flag(o, "rule.evalDelay")
		case o.GetKind() == "StatefulSet" && o.GetName() == "victoria-metrics":
			latencyOffset = flag(o, "search.latencyOffset")
		case o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "vmagent-config-"):
			var cfg struct {
				Global struct {
					ScrapeInterval string `json:"scrape_interval"`
				} `json:"global"`
			}
			data, _, _ := unstructured.NestedString(o.Object, "data", "scrape.yaml")
			if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
				t.Fatal(err)
			}
			if tm.scrape, err = time.ParseDuration(cfg.Global.ScrapeInterval); err != nil {
				t.Fatalf("vmagent scrape.yaml global.scrape_interval %q: %v", cfg.Global.ScrapeInterval, err)
			}
		}
	}
	if tm.scrape == 0 || tm.eval == 0 {
		t.Fatalf("found %s in the rendered stack; want vmagent's scrape interval and vmalert's evaluation interval", tm)
	}
	if latencyOffset != tm.evalDelay {
		t.Fatalf("VictoriaMetrics -search.latencyOffset=%s but vmalert -rule.evalDelay=%s: keep them equal (vmalert's documentation), or alerts read incomplete data", latencyOffset, tm.evalDelay)
	}
	return tm
}

// TestProductionTimingsAreReadable runs in every make test (it starts
// nothing): the manifests carry every interval the production-timings run
// needs, and the worst case they allow (a scrape, two evaluations and two
// delays) leaves room for the 2-minute detection goal.
func TestProductionTimingsAreReadable(t *testing.T) {
	tm := productionTimings(t)
	worst := tm.scrape + 2*(tm.eval+tm.evalDelay)
	t.Logf("%s: pipeline worst case before the SLIs cross a threshold %s", tm, worst)
	if worst > time.Minute {
		t.Errorf("%s: a scrape, two evaluations and two delays take %s; with the rules' own ramp that cannot page an outage within 2 minutes", tm, worst)
	}
}
