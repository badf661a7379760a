// Package dashboards builds ml-inference's Grafana dashboards as code with the
// Grafana Foundation SDK (github.com/grafana/grafana-foundation-sdk/go,
// Apache-2.0; Grafana itself is AGPL and is never imported). Generate renders
// each dashboard to deterministic, pretty-printed JSON; `platformctl dashboards
// generate` writes the files that Grafana provisions, and --check fails when
// the committed ones are stale. Check proves every query against what really
// exists: PromQL that parses, metric names that ml-inference's telemetry
// registry exports or the committed SLO rules record.
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Datasource UIDs (and plugin types) as Grafana's datasource provisioning
// names them.
const (
	MetricsUID = "victoriametrics" // type prometheus: VictoriaMetrics speaks its query API
	LogsUID    = "loki"
	TracesUID  = "tempo"
)

var (
	metricsDS = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr(MetricsUID)}
	logsDS    = common.DataSourceRef{Type: ptr("loki"), Uid: ptr(LogsUID)}
	tracesDS  = common.DataSourceRef{Type: ptr("tempo"), Uid: ptr(TracesUID)}
)

// Tag is on every dashboard here; the dashboards link to each other by it.
const Tag = "ml-inference"

// File is one generated dashboard.
type File struct {
	UID   string
	Title string
	Name  string // <uid>.json
	Data  []byte
}

// builders lists every dashboard, in the order they are generated.
var builders = []func() (dashboard.Dashboard, error){
	overview,
	slos,
	models,
	experiments,
	rollouts,
}

// Generate builds every dashboard and renders it. The output depends only on
// this package and the SDK version: no timestamps, no map-order effects.
func Generate() ([]File, error) {
	var files []File
	seen := map[string]bool{}
	for _, build := range builders {
		d, err := build()
		if err != nil {
			return nil, err
		}
		if d.Uid == nil || *d.Uid == "" || d.Title == nil {
			return nil, fmt.Errorf("a dashboard has no uid or title")
		}
		uid := *d.Uid
		if seen[uid] {
			return nil, fmt.Errorf("dashboard uid %q is used twice", uid)
		}
		seen[uid] = true
		data, err := Render(d)
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", uid, err)
		}
		files = append(files, File{UID: uid, Title: *d.Title, Name: uid + ".json", Data: data})
	}
	return files, nil
}

// Render encodes a dashboard as Grafana reads it: JSON indented by two spaces,
// object keys sorted, no HTML escaping (PromQL's < and > stay readable), and a
// final newline.
func Render(d dashboard.Dashboard) ([]byte, error) {
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	// Through a generic value: the SDK's own marshalers escape HTML, and
	// re-encoding sorts every object's keys, so the bytes are canonical.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// newDashboard starts a dashboard with the settings every one here shares.
func newDashboard(uid, title, description string, tags ...string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags(append([]string{Tag}, tags...)).
		Readonly().
		Timezone("browser").
		Time("now-6h", "now").
		Refresh("1m").
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboard.NewDashboardLinkBuilder("ml-inference").
			Type(dashboard.DashboardLinkTypeDashboards).
			Icon("external link").
			Tooltip("The other ml-inference dashboards").
			Tags([]string{Tag}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true))
}

// namespaceVar selects one environment: SLOs and budgets are per namespace
// (ml-inference-dev, -staging, -prod), so the dashboards never mix them.
// ml_inference_build_info is always 1 on every replica, traffic or not.
func namespaceVar() *dashboard.QueryVariableBuilder {
	return queryVar("namespace", "Namespace",
		`label_values(ml_inference_build_info{namespace=~"ml-inference-.*"}, namespace)`).
		Description("The environment: every ml-inference-* namespace that has a replica reporting ml_inference_build_info.")
}

// versionVar selects model versions; "none" (requests that reached no model,
// such as a 404 for an unknown X-Model-Version) is not one.
func versionVar() *dashboard.QueryVariableBuilder {
	return queryVar("version", "Model version",
		`label_values(inference_requests_total{namespace=~"$namespace", version!="none"}, version)`).
		Description("Model versions that served requests in the selected namespace.").
		Multi(true).
		IncludeAll(true).
		AllValue(".*")
}

func queryVar(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(metricsDS).
		Query(dashboard.StringOrMap{String: ptr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortNaturalAsc)
}

// layout places panels on Grafana's 24-column grid, row by row, and numbers
// them. The SDK's own placement nests a row's panels (which Grafana reads as a
// collapsed row) and loses their positions; here every row is expanded and
// its panels follow it, as Grafana itself saves them.
type layout struct {
	panels       []dashboard.PanelOrRowPanel
	x, y, height uint32
	id           uint32
	errs         []error
}

// row starts a full-width row. repeat, when set, names a variable: Grafana
// repeats the row and its panels for each selected value.
func (l *layout) row(title, repeat string) {
	l.newLine()
	l.id++
	r := dashboard.NewRowPanel()
	r.Title = ptr(title)
	r.Id = l.id
	r.GridPos = &dashboard.GridPos{X: 0, Y: l.y, W: 24, H: 1}
	if repeat != "" {
		r.Repeat = ptr(repeat)
	}
	l.panels = append(l.panels, dashboard.PanelOrRowPanel{RowPanel: r})
	l.y++
}

// add places a panel w columns wide and h units high after the previous one,
// wrapping to a new line when it does not fit.
func (l *layout) add(w, h uint32, b cog.Builder[dashboard.Panel]) {
	p, err := b.Build()
	if err != nil {
		l.errs = append(l.errs, err)
		return
	}
	if l.x+w > 24 {
		l.newLine()
	}
	l.id++
	p.Id = ptr(l.id)
	p.GridPos = &dashboard.GridPos{X: l.x, Y: l.y, W: w, H: h}
	for i, t := range p.Targets {
		p.Targets[i] = withRefID(t, refID(i))
	}
	l.panels = append(l.panels, dashboard.PanelOrRowPanel{Panel: &p})
	l.x += w
	l.height = max(l.height, h)
}

func (l *layout) newLine() {
	if l.x > 0 {
		l.y += l.height
	}
	l.x, l.height = 0, 0
}

// build finishes the dashboard with the laid-out panels.
func (l *layout) build(b *dashboard.DashboardBuilder) (dashboard.Dashboard, error) {
	d, err := b.Build()
	if err != nil {
		return d, err
	}
	if len(l.errs) > 0 {
		return d, fmt.Errorf("dashboard %s: %w", *d.Uid, l.errs[0])
	}
	d.Panels = l.panels
	// The SDK places links "inControlsMenu", hidden in a menu on Grafana 12
	// and unknown before it; without a placement they show in the top bar.
	for i := range d.Links {
		d.Links[i].Placement = nil
	}
	return d, nil
}

func refID(i int) string {
	if i < 26 {
		return string(rune('A' + i))
	}
	return fmt.Sprintf("Q%d", i)
}

func ptr[T any](v T) *T { return &v }

// joinMatchers renders label matchers for a selector, skipping empty ones.
func joinMatchers(ms ...string) string {
	var out []string
	for _, m := range ms {
		if m != "" {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}
