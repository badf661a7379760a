package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var repoDir = filepath.Join("..", "..", Dir)

// TestCommittedExperimentsLoad: every experiment in the repository is valid,
// and plans a sample.
func TestCommittedExperimentsLoad(t *testing.T) {
	specs, err := LoadAll(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) == 0 {
		t.Fatalf("no experiments in %s", repoDir)
	}
	for _, s := range specs {
		p, err := s.Design().PlanFor(s.Primary.Baseline)
		if err != nil {
			t.Errorf("%s: %v", s.Path, err)
			continue
		}
		t.Logf("%s: %s vs %s at %s, plan %.0f + %.0f feedback events (fixed horizon %.0f per arm), max %s",
			s.Name, s.Control, s.Treatment, s.Traffic(), p.Control, p.Treatment, p.FixedHorizonControl, s.MaxDuration())
	}
}

const good = `hypothesis: better
control: v2
treatment: v3
split: {control: 90, treatment: 10}
primaryMetric: {metric: accuracy, baseline: 0.8, minimumDetectableEffect: 0.03}
alpha: 0.05
power: 0.8
maxDuration: 14d
guardrails:
  serverErrors: {relativeMargin: 0.5}
  latency: {thresholdSeconds: 0.2, relativeMargin: 0}
`

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	s, err := Load(write(t, "v3-vs-v2.yaml", good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "v3-vs-v2" || s.MaxDuration() != 14*24*time.Hour || s.Traffic() != "v2=90,v3=10" {
		t.Errorf("loaded %+v", s)
	}
	d := s.Design()
	if d.Split != [2]float64{90, 10} || d.Guardrails.ErrorMargin != 0.5 || d.Guardrails.LatencyMargin != 0 || d.Guardrails.LatencyThreshold != 0.2 || d.MDE != 0.03 {
		t.Errorf("design %+v", d)
	}
}

// TestLoadErrors: every mistake names the file and the field.
func TestLoadErrors(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"unknown field", "alpha: 0.05", "alpha: 0.05\nalfa: 0.1", `unknown field "alfa"`},
		{"wrong type", "alpha: 0.05", "alpha: high", "alpha"},
		{"no hypothesis", "hypothesis: better", "hypothesis: ' '", `field "hypothesis"`},
		{"bad version", "control: v2", "control: version two", `field "control"`},
		{"same versions", "treatment: v3", "treatment: v2", `field "treatment"`},
		{"split sum", "{control: 90, treatment: 10}", "{control: 90, treatment: 20}", `field "split"`},
		{"zero arm", "{control: 90, treatment: 10}", "{control: 100, treatment: 0}", `field "split"`},
		{"metric", "metric: accuracy", "metric: clicks", `field "primaryMetric.metric"`},
		{"baseline", "baseline: 0.8", "baseline: 1.2", `field "primaryMetric.baseline"`},
		{"mde", "minimumDetectableEffect: 0.03", "minimumDetectableEffect: 0.3", `field "primaryMetric.minimumDetectableEffect"`},
		{"alpha", "alpha: 0.05", "alpha: 0.5", `field "alpha"`},
		{"power", "power: 0.8", "power: 0.3", `field "power"`},
		{"duration", "maxDuration: 14d", "maxDuration: two weeks", "maxDuration"},
		{"no duration", "maxDuration: 14d\n", "", `field "maxDuration"`},
		{"no error margin", "serverErrors: {relativeMargin: 0.5}", "serverErrors: {}", `field "guardrails.serverErrors.relativeMargin"`},
		{"threshold", "thresholdSeconds: 0.2", "thresholdSeconds: 0.3", `field "guardrails.latency.thresholdSeconds"`},
		{"negative margin", "relativeMargin: 0}", "relativeMargin: -1}", `field "guardrails.latency.relativeMargin"`},
		{"name", "hypothesis: better", "name: other\nhypothesis: better", `field "name"`},
	}
	for _, c := range cases {
		body := strings.Replace(good, c.from, c.to, 1)
		if body == good {
			t.Fatalf("%s: %q is not in the fixture", c.name, c.from)
		}
		path := write(t, "v3-vs-v2.yaml", body)
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error naming %s and %q", c.name, err, path, c.want)
		}
	}
	if _, err := Load(write(t, "Bad_Name.yaml", good)); err == nil || !strings.Contains(err.Error(), "file name") {
		t.Errorf("bad file name: %v", err)
	}
	if _, err := Find(repoDir, "no-such-experiment"); err == nil || !strings.Contains(err.Error(), "v2-vs-v1") {
		t.Errorf("unknown experiment: %v, want the known ones listed", err)
	}
}
