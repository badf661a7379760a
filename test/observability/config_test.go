// Package observability checks the observability stack's configuration files
// (infrastructure/base/observability) with the real programs that will read
// them, built from the pinned modules under tools/ (hack/tools.sh): vmagent's
// scrape configuration, Alertmanager's routing (amtool) and the OpenTelemetry
// Collector gateway's pipeline (otelcol-platform validate). Each check also
// gets a planted mistake it must reject. It also checks that the images the
// stack deploys are the releases these tests built.
//
// Loki, Tempo and Alloy configurations are not checked here: Loki and Tempo
// are AGPL and never built into this project; Alloy is not pinned as a tool.
package observability

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/ml-platform/platform/internal/render"
	"github.com/ml-platform/platform/internal/testtools"
)

var stack = filepath.Join("..", "..", "infrastructure", "base", "observability")

func run(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// plant writes a copy of file with old replaced by new (which must occur).
func plant(t *testing.T, file, old, new string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q: update the planted mistake", file, old)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(file))
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVMAgentScrapeConfig: vmagent -dryRun parses the scrape configuration
// strictly (unknown fields are errors) and exits.
func TestVMAgentScrapeConfig(t *testing.T) {
	vmagent := testtools.Bin(t, "VMAGENT_BIN", "vmagent")
	file := filepath.Join(stack, "vmagent", "scrape.yaml")
	check := func(f string) (string, error) {
		return run(vmagent, "-dryRun", "-promscrape.config="+f, "-promscrape.config.strictParse")
	}
	if out, err := check(file); err != nil {
		t.Fatalf("vmagent rejects %s: %v\n%s", file, err, out)
	}
	bad := plant(t, file, "relabel_configs:", "relabel_config:")
	if out, err := check(bad); err == nil {
		t.Errorf("vmagent accepted a misspelt field (relabel_config):\n%s", out)
	}
}

// TestAlertmanagerRouting: amtool accepts the configuration, and an alert of
// each severity reaches its receiver (page, ticket; anything else: default).
func TestAlertmanagerRouting(t *testing.T) {
	amtool := testtools.Bin(t, "AMTOOL_BIN", "amtool")
	file := filepath.Join(stack, "alertmanager", "alertmanager.yaml")
	if out, err := run(amtool, "check-config", file); err != nil {
		t.Fatalf("amtool check-config %s: %v\n%s", file, err, out)
	}
	for labels, want := range map[string]string{
		"severity=page":   "page",
		"severity=ticket": "ticket",
		"severity=info":   "default",
	} {
		args := append([]string{"config", "routes", "test", "--config.file=" + file, "--verify.receivers=" + want,
			"alertname=MLInferenceAvailabilityBudgetBurn", "namespace=ml-inference-prod", "sloth_slo=requests-availability"}, strings.Fields(labels)...)
		if out, err := run(amtool, args...); err != nil {
			t.Errorf("an alert with %s does not reach receiver %s: %v\n%s", labels, want, err, out)
		}
	}
	// Planted: a route to a receiver that does not exist.
	bad := plant(t, file, "  - receiver: page\n", "  - receiver: pager\n")
	if out, err := run(amtool, "check-config", bad); err == nil {
		t.Errorf("amtool accepted a route to an undefined receiver:\n%s", out)
	}
	// Planted: the routing test itself must notice a wrong receiver.
	if out, err := run(amtool, "config", "routes", "test", "--config.file="+file, "--verify.receivers=ticket", "severity=page"); err == nil {
		t.Errorf("amtool routes test did not notice that a page goes to page, not ticket:\n%s", out)
	}
}

// gatewayConfig is the collector gateway's configuration.
var gatewayConfig = filepath.Join(stack, "otel-collector", "config.yaml")

// TestCollectorGatewayConfig validates the gateway's pipeline with the pinned
// collector build (otelcol-platform validate), and checks the sampling
// policies the ADR promises. tail_sampling itself cannot be built here (its
// v0.165.0 needs contrib modules the Go module proxy does not serve), so it
// is removed from a copy before `validate`, and its policies are checked as
// data instead.
func TestCollectorGatewayConfig(t *testing.T) {
	otelcol := testtools.Bin(t, "OTELCOL_BIN", "otelcol")
	data, err := os.ReadFile(gatewayConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	processors := cfg["processors"].(map[string]any)
	ts, ok := processors["tail_sampling"].(map[string]any)
	if !ok {
		t.Fatal("the gateway has no tail_sampling processor")
	}
	var kinds []string
	for _, p := range ts["policies"].([]any) {
		p := p.(map[string]any)
		switch p["type"] {
		case "status_code":
			codes := p["status_code"].(map[string]any)["status_codes"].([]any)
			if !slices.Contains(codes, any("ERROR")) {
				t.Errorf("status_code policy keeps %v; want ERROR (every error trace)", codes)
			}
		case "latency":
			if v := p["latency"].(map[string]any)["threshold_ms"]; v != float64(200) {
				t.Errorf("latency policy threshold %v ms; want 200 (the latency SLO)", v)
			}
		case "probabilistic":
			if v := p["probabilistic"].(map[string]any)["sampling_percentage"]; v != float64(10) {
				t.Errorf("probabilistic policy keeps %v%%; want 10", v)
			}
		}
		kinds = append(kinds, p["type"].(string))
	}
	slices.Sort(kinds)
	if want := []string{"latency", "probabilistic", "status_code"}; !slices.Equal(kinds, want) {
		t.Errorf("tail_sampling policies %v; want %v", kinds, want)
	}

	delete(processors, "tail_sampling")
	pipeline := cfg["service"].(map[string]any)["pipelines"].(map[string]any)["traces"].(map[string]any)
	var rest []any
	for _, p := range pipeline["processors"].([]any) {
		if p != "tail_sampling" {
			rest = append(rest, p)
		}
	}
	pipeline["processors"] = rest
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(file, out, 0o644)
	if out, err := run(otelcol, "validate", "--config="+file); err != nil {
		t.Fatalf("otelcol validate rejects %s (without tail_sampling): %v\n%s", gatewayConfig, err, out)
	}
	bad := plant(t, file, "send_batch_size", "send_batch_sise")
	if out, err := run(otelcol, "validate", "--config="+bad); err == nil {
		t.Errorf("otelcol validate accepted a misspelt field (send_batch_sise):\n%s", out)
	}
}

// TestImagesAreThePinnedReleases: the stack deploys the releases whose
// configuration parsers these tests ran (and that the SLO live run used).
func TestImagesAreThePinnedReleases(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(stack, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Images []struct {
			Name   string `json:"name"`
			NewTag string `json:"newTag"`
		} `json:"images"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, i := range k.Images {
		tags[i.Name] = i.NewTag
	}
	pinned := func(module, path string) string {
		data, err := os.ReadFile(filepath.Join("..", "..", "tools", module, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(path) + ` (v\S+)`).FindSubmatch(data)
		if m == nil {
			t.Fatalf("tools/%s/go.mod does not require %s", module, path)
		}
		return string(m[1])
	}
	vm := pinned("victoriametrics", "github.com/VictoriaMetrics/VictoriaMetrics")
	for image, want := range map[string]string{
		"victoriametrics/victoria-metrics":     vm,
		"victoriametrics/vmagent":              vm,
		"victoriametrics/vmalert":              vm,
		"prom/alertmanager":                    pinned("alertmanager", "github.com/prometheus/alertmanager"),
		"otel/opentelemetry-collector-contrib": strings.TrimPrefix(pinned("otelcol", "go.opentelemetry.io/collector/otelcol"), "v"),
	} {
		if tags[image] != want {
			t.Errorf("%s is deployed at %q; the tools pin %q: bump both together", image, tags[image], want)
		}
	}
}

// variants are the two shapes of the stack: the base (Loki single binary) and
// the production overlay (Loki distributed on S3).
var variants = []string{stack, filepath.Join("..", "..", "infrastructure", "overlays", "observability-prod")}

// TestLokiURLsNameRenderedServices: in each variant, the Loki URLs Alloy
// pushes to (LOKI_PUSH_URL) and Grafana reads from (LOKI_URL) name a Service
// that variant renders, on a port it exposes, and every Loki pod runs the
// same image.
func TestLokiURLsNameRenderedServices(t *testing.T) {
	for _, v := range variants {
		t.Run(filepath.Base(v), func(t *testing.T) {
			objs, err := render.Build(v)
			if err != nil {
				t.Fatal(err)
			}
			services := map[string][]int64{}
			for _, o := range objs {
				if o.GetKind() == "Service" {
					ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
					for _, p := range ports {
						services[o.GetName()+"."+o.GetNamespace()] = append(services[o.GetName()+"."+o.GetNamespace()], p.(map[string]any)["port"].(int64))
					}
				}
			}
			urls := map[string]string{}
			lokiImages := map[string]bool{}
			for _, o := range objs {
				containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				for _, c := range containers {
					c := c.(map[string]any)
					if img, _ := c["image"].(string); strings.HasPrefix(img, "grafana/loki:") {
						lokiImages[img] = true
					}
					envs, _ := c["env"].([]any)
					for _, e := range envs {
						e := e.(map[string]any)
						if n := e["name"].(string); n == "LOKI_URL" || n == "LOKI_PUSH_URL" {
							urls[o.GetName()+" "+n] = e["value"].(string)
						}
					}
				}
			}
			if len(urls) != 2 {
				t.Fatalf("found %v; want LOKI_PUSH_URL (alloy) and LOKI_URL (grafana)", urls)
			}
			re := regexp.MustCompile(`^http://([a-z0-9-]+\.[a-z0-9-]+)\.svc:(\d+)(/.*)?$`)
			for who, u := range urls {
				m := re.FindStringSubmatch(u)
				if m == nil {
					t.Errorf("%s=%s: want http://SERVICE.NAMESPACE.svc:PORT", who, u)
					continue
				}
				if !slices.ContainsFunc(services[m[1]], func(p int64) bool { return strconv.FormatInt(p, 10) == m[2] }) {
					t.Errorf("%s=%s: %s renders no Service %s with port %s (it has %v)", who, u, v, m[1], m[2], services)
				}
			}
			if len(lokiImages) != 1 {
				t.Errorf("Loki pods run %d different images %v; want one release", len(lokiImages), lokiImages)
			}
		})
	}
}
