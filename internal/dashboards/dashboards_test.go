package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// rulesFile is the committed SLO rules file, from this package's directory.
var rulesFile = filepath.Join("..", "..", "infrastructure", "base", "observability", "rules", "ml-inference-slos.yaml")

func generate(t *testing.T) []File {
	t.Helper()
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func knownMetrics(t *testing.T) Known {
	t.Helper()
	k, err := KnownMetrics(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func parsed(t *testing.T, f File) *Dashboard {
	t.Helper()
	d, err := Parse(f.Data)
	if err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	return d
}

// TestGeneratedDashboardsPassCheck: every query of every dashboard parses and
// selects only metrics that exist.
func TestGeneratedDashboardsPassCheck(t *testing.T) {
	known := knownMetrics(t)
	for _, f := range generate(t) {
		if err := Check(f.Name, f.Data, known); err != nil {
			t.Error(err)
		}
		d := parsed(t, f)
		var metrics []string
		for _, q := range d.Queries {
			if q.Type == "prometheus" {
				names, err := SelectedMetrics(q.Expr, d.Variables)
				if err != nil {
					t.Errorf("%s %s: %v", f.UID, q.where(), err)
				}
				metrics = append(metrics, names...)
			}
		}
		slices.Sort(metrics)
		t.Logf("%s: %d panels, %d queries, metrics %v", f.UID, len(d.PanelIDs), len(d.Queries), slices.Compact(metrics))
	}
}

// TestGenerateIsDeterministic: the same bytes every time, canonical JSON.
func TestGenerateIsDeterministic(t *testing.T) {
	a, b := generate(t), generate(t)
	if len(a) != len(b) {
		t.Fatal("two generations differ in length")
	}
	for i := range a {
		if !bytes.Equal(a[i].Data, b[i].Data) {
			t.Errorf("%s: two generations differ", a[i].Name)
		}
		data := a[i].Data
		if !bytes.HasSuffix(data, []byte("}\n")) || bytes.Contains(data, []byte(`\u003c`)) || bytes.Contains(data, []byte(`\u003e`)) {
			t.Errorf("%s: not canonical (final newline, no HTML escapes)", a[i].Name)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v", a[i].Name, err)
		}
		again, _ := json.MarshalIndent(v, "", "  ")
		again = bytes.ReplaceAll(again, []byte(`\u003c`), []byte("<"))
		again = bytes.ReplaceAll(again, []byte(`\u003e`), []byte(">"))
		again = bytes.ReplaceAll(again, []byte(`\u0026`), []byte("&"))
		if !bytes.Equal(append(again, '\n'), data) {
			t.Errorf("%s: not in canonical form (sorted keys, two-space indent)", a[i].Name)
		}
		for _, s := range []string{"timestamp", `"created"`, `"updated"`, `"version":`} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s: contains %s, which would change on every save", a[i].Name, s)
			}
		}
	}
}

// TestDashboardContracts pins what the lead and the other dashboards rely on:
// stable uids, tags, variables, datasources, and the panels the brief asks
// for, built on the metrics named in the architecture's contract.
func TestDashboardContracts(t *testing.T) {
	files := generate(t)
	byUID := map[string]*Dashboard{}
	var uids []string
	for _, f := range files {
		d := parsed(t, f)
		byUID[d.UID] = d
		uids = append(uids, d.UID)
		if f.Name != d.UID+".json" {
			t.Errorf("file %s holds dashboard %s", f.Name, d.UID)
		}
		if !slices.Contains(d.Tags, Tag) {
			t.Errorf("%s: tags %v lack %q", d.UID, d.Tags, Tag)
		}
		if len(d.Variables) == 0 || d.Variables[0] != "namespace" {
			t.Errorf("%s: variables %v, want namespace first", d.UID, d.Variables)
		}
		for _, q := range d.Queries {
			if q.Panel == "variable $namespace" && !strings.Contains(q.Expr, `label_values(`) || q.Panel == "variable $namespace" && !strings.Contains(q.Expr, `namespace=~"ml-inference-.*"`) {
				t.Errorf("%s: namespace variable query %q, want label_values over ml-inference-* namespaces", d.UID, q.Expr)
			}
			if !strings.HasPrefix(q.Panel, "variable ") && q.Type == "prometheus" && !strings.Contains(q.Expr, `namespace=~"$namespace"`) && !perSLOConstant(q.Expr, d.Variables) {
				t.Errorf("%s %s: does not filter by $namespace: %s", d.UID, q.where(), q.Expr)
			}
		}
		checkGrid(t, f)
	}
	if want := []string{"ml-inference-overview", "ml-inference-slos", "ml-inference-models", "ml-inference-experiments", "ml-inference-rollouts"}; !slices.Equal(uids, want) {
		t.Fatalf("uids %v, want %v (uids are what links and provisioning use: never change them)", uids, want)
	}
	for _, uid := range []string{"ml-inference-overview", "ml-inference-models"} {
		if !slices.Contains(byUID[uid].Variables, "version") {
			t.Errorf("%s: no version variable", uid)
		}
	}

	contains := func(uid string, wants ...string) {
		t.Helper()
		var all strings.Builder
		for _, q := range byUID[uid].Queries {
			all.WriteString(q.Expr + "\n")
		}
		for _, w := range wants {
			if !strings.Contains(all.String(), w) {
				t.Errorf("%s: no query contains %q", uid, w)
			}
		}
	}
	contains("ml-inference-overview",
		"sum(rate(inference_requests_total{",
		`status=~"5.."`,
		"histogram_quantile(0.5, sum by (version, le) (rate(inference_request_duration_seconds_bucket{",
		"histogram_quantile(0.95, sum by (version, le) (rate(inference_request_duration_seconds_bucket{",
		"histogram_quantile(0.99, sum by (version, le) (rate(inference_request_duration_seconds_bucket{",
		"inference_active_requests{", "inference_requests_shed_total{",
		"process_cpu_seconds_total{", "process_resident_memory_bytes{", "go_goroutines{",
		`{namespace=~"$namespace", app="ml-inference"} | json`)
	contains("ml-inference-slos",
		"slo:sli_error:ratio_rate5m{", "slo:sli_error:ratio_rate30d{", "slo:objective:ratio{", "slo:error_budget:ratio{",
		"slo:current_burn_rate:ratio{", "slo:period_error_budget_remaining:ratio{", "label_values(sloth_slo_info{")
	for _, w := range sloWindows {
		contains("ml-inference-slos", "slo:sli_error:ratio_rate"+w+"{")
	}
	contains("ml-inference-models",
		"sum by (version, sentiment) (increase(model_predictions_total{", "model_traffic_weight_percent{",
		"histogram_quantile(0.95, sum by (version, le) (rate(inference_request_duration_seconds_bucket{")

	contains("ml-inference-experiments",
		`model_feedback_total{namespace=~"$namespace", version=~"$control|$treatment", routing="split", outcome="correct"}`,
		"1.96 * sqrt(", "model_traffic_weight_percent{", "model_feedback_refused_total{",
		"histogram_quantile(0.95, sum by (version, le) (rate(inference_request_duration_seconds_bucket{")
	// The rollout dashboard: canary against stable by pod template hash, the
	// Rollouts controller's series, the judge's.
	contains("ml-inference-rollouts",
		"count by (rollouts_pod_template_hash) (ml_inference_build_info{",
		"histogram_quantile(0.95, sum by (rollouts_pod_template_hash, le) (rate(inference_request_duration_seconds_bucket{",
		`sum by (rollouts_pod_template_hash) (rate(inference_requests_total{namespace=~"$namespace", endpoint!~"/metrics|/health|/ready|/v2/health/.*", status=~"5.."}`,
		`rollout_info{namespace=~"$namespace", name="ml-inference"}`, "rollout_info_replicas_updated{", "analysis_run_metric_phase{",
		"judge_verdicts_total{", "judge_effect{", "judge_p_value{", "judge_samples{")

	// The logs panel: Loki by uid, the collector's labels, and the traces
	// table on Tempo.
	var logs, traces int
	for _, q := range byUID["ml-inference-overview"].Queries {
		switch q.Datasource {
		case LogsUID:
			logs++
		case TracesUID:
			traces++
		}
	}
	if logs == 0 || traces == 0 {
		t.Errorf("overview: %d Loki and %d Tempo queries, want some of each", logs, traces)
	}
	// The SLO dashboard repeats a row per SLO.
	if !slices.Contains(byUID["ml-inference-slos"].Repeats, "slo") {
		t.Error("ml-inference-slos: no row repeats by $slo")
	}
}

// perSLOConstant: the query selects only Sloth's per-SLO constants, recorded
// as vector(...) and so without a namespace label.
func perSLOConstant(expr string, vars []string) bool {
	names, err := SelectedMetrics(expr, vars)
	if err != nil || len(names) == 0 {
		return false
	}
	for _, n := range names {
		if n != "slo:objective:ratio" && n != "slo:error_budget:ratio" {
			return false
		}
	}
	return true
}

// checkGrid: panels fit the 24-column grid and do not overlap.
func checkGrid(t *testing.T, f File) {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			GridPos struct{ X, Y, W, H int }
		} `json:"panels"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatal(err)
	}
	type cell struct{ x, y int }
	used := map[cell]string{}
	for _, p := range d.Panels {
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("%s: panel %q at %+v is off the grid", f.UID, p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := used[cell{x, y}]; ok {
					t.Errorf("%s: panel %q overlaps %q at (%d,%d)", f.UID, p.Title, other, x, y)
					return
				}
				used[cell{x, y}] = p.Title
			}
		}
	}
}

// TestExportedMetricsComeFromTheRegistry: the names are the exposition's, by
// type, for every instrument of the architecture's contract.
func TestExportedMetricsComeFromTheRegistry(t *testing.T) {
	k, err := ExportedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"inference_requests_total",
		"inference_request_duration_seconds_bucket", "inference_request_duration_seconds_sum", "inference_request_duration_seconds_count",
		"model_inference_duration_seconds_bucket", "inference_active_requests", "ml_inference_build_info",
		"model_predictions_total", "inference_requests_shed_total", "model_versions_loaded", "model_reloads_total",
		"model_traffic_weight_percent",
		"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines", "go_gc_duration_seconds_count",
	} {
		if _, ok := k[want]; !ok {
			t.Errorf("%s is not among the exported metrics", want)
		}
	}
	for _, absent := range []string{
		"inference_request_duration_seconds", // a classic histogram has no bare series
		"inference_requests_total_total",
		"model_predictions_total_bucket",
	} {
		if _, ok := k[absent]; ok {
			t.Errorf("%s is listed as exported; it is not a series", absent)
		}
	}
	t.Logf("%d exported series names", len(k))
}

func TestRecordedSeries(t *testing.T) {
	k, err := RecordedSeries(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate30d", "slo:objective:ratio", "slo:error_budget:ratio",
		"slo:current_burn_rate:ratio", "slo:period_burn_rate:ratio", "slo:period_error_budget_remaining:ratio", "sloth_slo_info",
	} {
		if _, ok := k[want]; !ok {
			t.Errorf("%s: %s is not recorded", rulesFile, want)
		}
	}
	if _, ok := k["MLInferenceAvailabilityBudgetBurn"]; ok {
		t.Error("an alert name is listed as a recorded series")
	}
	if _, err := RecordedSeries(filepath.Join(t.TempDir(), "none.yaml")); err == nil {
		t.Error("a missing rules file is not an error")
	}
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(broken, []byte("groups:\n- name: x\n  rules:\n  - record: a:b\n    expr: sum(rate(x[5m])\n"), 0o644)
	if _, err := RecordedSeries(broken); err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("a rules file with broken PromQL: err %v, want it named", err)
	}
}

// TestAllowListIsUsed keeps the allow-list as small as what the dashboards
// need.
func TestAllowListIsUsed(t *testing.T) {
	used := map[string]bool{}
	for _, f := range generate(t) {
		d := parsed(t, f)
		for _, q := range d.Queries {
			if q.Type != "prometheus" {
				continue
			}
			names, _ := SelectedMetrics(q.Expr, d.Variables)
			for _, n := range names {
				used[n] = true
			}
		}
	}
	for name, why := range AllowList {
		if !used[name] {
			t.Errorf("allow-listed %s is used by no dashboard; remove it", name)
		}
		if strings.TrimSpace(why) == "" {
			t.Errorf("allow-listed %s has no reason", name)
		}
	}
}

// plant builds a one-panel dashboard around the given queries.
func plant(t *testing.T, panel string, qs ...promQuery) []byte {
	t.Helper()
	var l layout
	l.row("planted", "")
	l.add(24, 8, timeSeries(panel, "", unitShort, qs...))
	d, err := l.build(newDashboard("planted", "planted", "").WithVariable(namespaceVar()).WithVariable(versionVar()))
	if err != nil {
		t.Fatal(err)
	}
	data, err := Render(d)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCheckRejectsPlantedProblems: each broken query is reported with the
// dashboard, the panel and what is wrong.
func TestCheckRejectsPlantedProblems(t *testing.T) {
	known := knownMetrics(t)
	cases := []struct {
		name  string
		data  []byte
		wants []string
	}{
		{"unknown metric", plant(t, "Typo", prom(`sum(rate(inference_request_total{namespace=~"$namespace"}[$__rate_interval]))`, "")),
			[]string{`panel "Typo"`, `unknown metric "inference_request_total"`}},
		{"histogram without a suffix", plant(t, "Bare histogram", prom(`histogram_quantile(0.9, sum by (le) (rate(inference_request_duration_seconds{namespace=~"$namespace"}[5m])))`, "")),
			[]string{`unknown metric "inference_request_duration_seconds"`, "did you mean inference_request_duration_seconds_bucket"}},
		{"counter without _total", plant(t, "No total", prom(`rate(model_predictions{namespace=~"$namespace"}[5m])`, "")),
			[]string{`unknown metric "model_predictions"`, "did you mean model_predictions_total"}},
		{"window Sloth does not record", plant(t, "Seven days", prom(`slo:sli_error:ratio_rate7d{namespace=~"$namespace"}`, "")),
			[]string{`unknown metric "slo:sli_error:ratio_rate7d"`}},
		{"second query of a panel", plant(t, "Two", prom(`go_goroutines{namespace=~"$namespace"}`, ""), prom(`go_goroutine{namespace=~"$namespace"}`, "")),
			[]string{`panel "Two", query B`, `unknown metric "go_goroutine"`}},
		{"PromQL that does not parse", plant(t, "Unbalanced", prom(`sum(rate(inference_requests_total{namespace=~"$namespace"}[5m])`, "")),
			[]string{`panel "Unbalanced"`, "PromQL does not parse"}},
		{"undefined variable", plant(t, "Undefined", prom(`inference_active_requests{namespace=~"$namespace", pod=~"$pod"}`, "")),
			[]string{`uses $pod`}},
		{"metric name by regex", plant(t, "Regex", prom(`{__name__=~"inference_.*", namespace=~"$namespace"}`, "")),
			[]string{"names no metric literally"}},
		{"unknown datasource", plant(t, "Elsewhere", prom(`go_goroutines{namespace=~"$namespace"}`, "").
			Datasource(metricsDSWithUID("prometheus"))),
			[]string{`datasource uid "prometheus"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check("planted.json", c.data, known)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(c.wants, "dashboard planted (planted.json)") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			t.Log(err)
		})
	}

	// What exists is accepted: an exported metric, a recorded series, an
	// allow-listed one, Grafana's variables in every form.
	ok := plant(t, "Fine",
		prom(`sum by (version) (rate(inference_requests_total{namespace=~"$namespace", version=~"${version}"}[$__rate_interval]))`, ""),
		prom(`max(slo:objective:ratio{namespace=~"[[namespace]]"}) * count(ALERTS{namespace=~"$namespace"})`, ""),
		prom(`sum(increase(model_predictions_total{namespace=~"${namespace:regex}"}[$__range]))`, ""))
	if err := Check("planted.json", ok, known); err != nil {
		t.Errorf("a dashboard of known metrics is rejected: %v", err)
	}
}

func metricsDSWithUID(uid string) (ds common.DataSourceRef) {
	ds = metricsDS
	ds.Uid = ptr(uid)
	return ds
}

// TestCheckRejectsPlantedCommittedFile plants an unknown metric in the
// committed overview dashboard's JSON and a bad log stream label, as a hand
// edit would.
func TestCheckRejectsPlantedCommittedFile(t *testing.T) {
	known := knownMetrics(t)
	path := filepath.Join("..", "..", "infrastructure", "base", "observability", "dashboards", "ml-inference-overview.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(path, data, known); err != nil {
		t.Fatalf("the committed file fails: %v", err)
	}
	plants := []struct{ old, new, want string }{
		{`go_goroutines{`, `go_goroutinez{`, `panel "Goroutines by pod", query A: unknown metric "go_goroutinez"`},
		{`app=\"ml-inference\"} | json"`, `service=\"ml-inference\"} | json"`, `stream selector uses label "service"`},
		{`label_values(ml_inference_build_info{`, `label_values(ml_inference_build{`, `variable $namespace: unknown metric "ml_inference_build"`},
	}
	for _, p := range plants {
		planted := strings.ReplaceAll(string(data), p.old, p.new)
		if planted == string(data) {
			t.Fatalf("plant %q changed nothing; update the test", p.old)
		}
		err := Check(path, []byte(planted), known)
		if err == nil || !strings.Contains(err.Error(), p.want) || !strings.Contains(err.Error(), "ml-inference-overview") {
			t.Errorf("planted %q: err %v, want %q naming the dashboard", p.new, err, p.want)
		}
	}
}

func TestSubstitute(t *testing.T) {
	vars := map[string]bool{"namespace": true, "version": true}
	cases := []struct{ in, out string }{
		{`x{a=~"$namespace"}[$__rate_interval]`, `x{a=~"var_namespace"}[5m]`},
		{`x{a=~"${namespace}", b=~"${version:regex}"}[$__range]`, `x{a=~"var_namespace", b=~"var_version"}[1d]`},
		{`x{a=~"[[namespace]]"}[$__interval]`, `x{a=~"var_namespace"}[1m]`},
		{`x{a=~"^v1$|^v2$"}`, `x{a=~"^v1$|^v2$"}`},
	}
	for _, c := range cases {
		got, undefined := substitute(c.in, vars)
		if got != c.out || len(undefined) > 0 {
			t.Errorf("substitute(%q) = %q, %v; want %q", c.in, got, undefined, c.out)
		}
	}
	if _, undefined := substitute(`x{a="$nope", b="$nope"}`, vars); !slices.Equal(undefined, []string{"nope"}) {
		t.Errorf("undefined %v, want [nope]", undefined)
	}
}

// TestLayoutFlattensRows: rows are expanded, their panels follow them at the
// top level, as Grafana saves a dashboard.
func TestLayoutFlattensRows(t *testing.T) {
	for _, f := range generate(t) {
		var d dashboard.Dashboard
		if err := json.Unmarshal(f.Data, &d); err != nil {
			t.Fatalf("%s: the SDK cannot read it back: %v", f.Name, err)
		}
		for _, p := range d.Panels {
			if r := p.RowPanel; r != nil && (r.Collapsed || len(r.Panels) > 0) {
				t.Errorf("%s: row %q is collapsed or nests panels", f.Name, *r.Title)
			}
		}
	}
}
