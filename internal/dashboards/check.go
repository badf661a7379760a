package dashboards

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Datasources a dashboard may use: uid -> plugin type.
var Datasources = map[string]string{
	MetricsUID: "prometheus",
	LogsUID:    "loki",
	TracesUID:  "tempo",
}

// LogStreamLabels are the stream labels the log collector attaches to every
// ml-inference line; a Loki stream selector on any other label matches
// nothing.
var LogStreamLabels = []string{"namespace", "pod", "container", "app", "env"}

// builtinVars are Grafana's global variables, replaced by a value of the
// right kind before a query is parsed.
var builtinVars = map[string]string{
	"__rate_interval":    "5m",
	"__interval":         "1m",
	"__interval_ms":      "60000",
	"__range":            "1d",
	"__range_s":          "86400",
	"__range_ms":         "86400000",
	"__auto":             "1m",
	"__rate_interval_ms": "300000",
}

// Query is one query of a dashboard: a panel target or a variable's query.
type Query struct {
	Panel      string // the panel's title, or "variable $name"
	RefID      string
	Datasource string // uid
	Type       string // the datasource's plugin type, as the dashboard states it
	Expr       string // PromQL or LogQL; TraceQL for Tempo
}

func (q Query) where() string {
	if q.RefID != "" {
		return fmt.Sprintf("panel %q, query %s", q.Panel, q.RefID)
	}
	if strings.HasPrefix(q.Panel, "variable ") {
		return q.Panel
	}
	return fmt.Sprintf("panel %q", q.Panel)
}

// Dashboard is what Check reads from a dashboard's JSON.
type Dashboard struct {
	UID       string
	Title     string
	Tags      []string
	Variables []string // names, in order
	Repeats   []string // variables rows and panels repeat by
	Queries   []Query
	PanelIDs  []int
	Problems  []string // structure that cannot be right whatever the metrics
}

type jsonDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type jsonPanel struct {
	ID         *int        `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Repeat     string      `json:"repeat"`
	Datasource *jsonDS     `json:"datasource"`
	Panels     []jsonPanel `json:"panels"`
	Targets    []struct {
		RefID      string  `json:"refId"`
		Datasource *jsonDS `json:"datasource"`
		Expr       string  `json:"expr"`
		Query      string  `json:"query"`
	} `json:"targets"`
}

// Parse reads a dashboard's JSON: its variables, every panel (rows' nested
// panels too) and every query.
func Parse(data []byte) (*Dashboard, error) {
	var raw struct {
		UID        string      `json:"uid"`
		Title      string      `json:"title"`
		Tags       []string    `json:"tags"`
		Panels     []jsonPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string          `json:"name"`
				Type       string          `json:"type"`
				Datasource *jsonDS         `json:"datasource"`
				Query      json.RawMessage `json:"query"`
				Definition string          `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	d := &Dashboard{UID: raw.UID, Title: raw.Title, Tags: raw.Tags}
	for _, v := range raw.Templating.List {
		d.Variables = append(d.Variables, v.Name)
		if v.Type != "query" {
			continue
		}
		q := Query{Panel: "variable $" + v.Name}
		if v.Datasource != nil {
			q.Datasource, q.Type = v.Datasource.UID, v.Datasource.Type
		}
		// The query is a string, or an object whose "query" is the string.
		var s string
		if err := json.Unmarshal(v.Query, &s); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				return nil, fmt.Errorf("variable $%s: query: %w", v.Name, err)
			}
			s = obj.Query
		}
		q.Expr = s
		if v.Definition != "" && v.Definition != s {
			d.Problems = append(d.Problems, fmt.Sprintf("variable $%s: definition %q differs from its query %q", v.Name, v.Definition, s))
		}
		d.Queries = append(d.Queries, q)
	}
	var walk func(ps []jsonPanel)
	walk = func(ps []jsonPanel) {
		for _, p := range ps {
			if p.ID == nil {
				d.Problems = append(d.Problems, fmt.Sprintf("panel %q has no id", p.Title))
			} else {
				d.PanelIDs = append(d.PanelIDs, *p.ID)
			}
			if strings.TrimSpace(p.Title) == "" {
				d.Problems = append(d.Problems, fmt.Sprintf("a %s panel has no title", p.Type))
			}
			if p.Repeat != "" {
				d.Repeats = append(d.Repeats, p.Repeat)
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				d.Problems = append(d.Problems, fmt.Sprintf("panel %q has no query", p.Title))
			}
			for _, t := range p.Targets {
				q := Query{Panel: p.Title, RefID: t.RefID, Expr: t.Expr}
				ds := t.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				if ds != nil {
					q.Datasource, q.Type = ds.UID, ds.Type
				}
				if q.Type == "tempo" {
					q.Expr = t.Query
				}
				d.Queries = append(d.Queries, q)
			}
			walk(p.Panels)
		}
	}
	walk(raw.Panels)
	return d, nil
}

// Check proves a dashboard's queries against what exists. name is how errors
// call the dashboard (its file). Every problem is reported, each naming the
// dashboard, the panel and what is wrong:
//
//   - every query uses one of Datasources, by uid, with its type;
//   - every $variable it uses is the dashboard's or Grafana's;
//   - PromQL parses (github.com/prometheus/prometheus/promql/parser, after
//     replacing variables), and every metric it selects is in known;
//   - a variable's label_values() or query_result() is checked the same way;
//   - a Loki stream selector uses only LogStreamLabels;
//   - panels have titles, unique ids and a query.
func Check(name string, data []byte, known Known) error {
	d, err := Parse(data)
	if err != nil {
		return fmt.Errorf("dashboard %s: %w", name, err)
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("dashboard %s (%s): %s", d.UID, name, fmt.Sprintf(format, args...)))
	}
	if d.UID == "" || d.Title == "" {
		fail("no uid or title")
	}
	for _, p := range d.Problems {
		fail("%s", p)
	}
	seen := map[int]bool{}
	for _, id := range d.PanelIDs {
		if seen[id] {
			fail("panel id %d is used twice", id)
		}
		seen[id] = true
	}
	vars := map[string]bool{}
	for _, v := range d.Variables {
		if vars[v] {
			fail("variable $%s is defined twice", v)
		}
		vars[v] = true
	}
	for _, r := range d.Repeats {
		if !vars[r] {
			fail("a row or panel repeats by $%s, which is not a variable", r)
		}
	}
	for _, q := range d.Queries {
		for _, msg := range checkQuery(q, vars, known) {
			fail("%s: %s", q.where(), msg)
		}
	}
	return errors.Join(errs...)
}

func checkQuery(q Query, vars map[string]bool, known Known) []string {
	want, ok := Datasources[q.Datasource]
	switch {
	case q.Datasource == "":
		return []string{"no datasource"}
	case !ok:
		return []string{fmt.Sprintf("datasource uid %q is none of %s", q.Datasource, strings.Join(slices.Sorted(maps.Keys(Datasources)), ", "))}
	case q.Type != want:
		return []string{fmt.Sprintf("datasource %q has type %q, want %q", q.Datasource, q.Type, want)}
	case strings.TrimSpace(q.Expr) == "":
		return []string{"empty query"}
	}
	expr, undefined := substitute(q.Expr, vars)
	var problems []string
	for _, v := range undefined {
		problems = append(problems, fmt.Sprintf("uses $%s, which is neither a variable of this dashboard nor Grafana's", v))
	}
	switch q.Type {
	case "prometheus":
		var ps []string
		if strings.HasPrefix(q.Panel, "variable ") {
			ps = checkVariableQuery(expr, known)
		} else {
			ps = checkPromQL(expr, known)
		}
		for i, p := range ps {
			if strings.HasPrefix(p, "PromQL does not parse") {
				ps[i] = p + "\n    " + strings.ReplaceAll(q.Expr, "\n", "\n    ")
			}
		}
		problems = append(problems, ps...)
	case "loki":
		problems = append(problems, checkLogStream(q.Expr)...)
	}
	return problems
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)
var queryResultRE = regexp.MustCompile(`^\s*query_result\((.+)\)\s*$`)

// checkVariableQuery checks the Prometheus datasource's variable functions
// that select series.
func checkVariableQuery(expr string, known Known) []string {
	if m := labelValuesRE.FindStringSubmatch(expr); m != nil {
		return checkPromQL(m[1], known)
	}
	if m := queryResultRE.FindStringSubmatch(expr); m != nil {
		return checkPromQL(m[1], known)
	}
	return []string{fmt.Sprintf("variable query %q is not label_values(selector, label) or query_result(query); it cannot be checked", expr)}
}

// checkPromQL parses a query (variables already replaced) and checks that
// every selector names a known metric.
func checkPromQL(expr string, known Known) []string {
	ast, err := parser.ParseExpr(expr)
	if err != nil {
		return []string{fmt.Sprintf("PromQL does not parse (variables replaced): %v", err)}
	}
	var problems []string
	for _, name := range selectedMetrics(ast, &problems) {
		if _, ok := known[name]; !ok {
			problems = append(problems, fmt.Sprintf("unknown metric %q: ml-inference does not export it, the rules file does not record it, and it is not allow-listed%s", name, hint(name, known)))
		}
	}
	return problems
}

// SelectedMetrics returns the metric names a PromQL query selects, after
// replacing vars (the dashboard's variable names) and Grafana's own.
func SelectedMetrics(expr string, vars []string) ([]string, error) {
	defined := map[string]bool{}
	for _, v := range vars {
		defined[v] = true
	}
	s, undefined := substitute(expr, defined)
	if len(undefined) > 0 {
		return nil, fmt.Errorf("undefined variables %v", undefined)
	}
	if m := labelValuesRE.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	ast, err := parser.ParseExpr(s)
	if err != nil {
		return nil, err
	}
	var problems []string
	names := selectedMetrics(ast, &problems)
	if len(problems) > 0 {
		return names, errors.New(strings.Join(problems, "; "))
	}
	return names, nil
}

func selectedMetrics(ast parser.Expr, problems *[]string) []string {
	var names []string
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name == "" {
			*problems = append(*problems, fmt.Sprintf("selector %s names no metric literally; it cannot be checked", vs))
			return nil
		}
		names = append(names, name)
		return nil
	})
	return names
}

func hint(name string, known Known) string {
	for _, s := range []string{"_bucket", "_total", "_count"} {
		if _, ok := known[name+s]; ok {
			return fmt.Sprintf(" (did you mean %s%s?)", name, s)
		}
	}
	return ""
}

var varRE = regexp.MustCompile(`\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)`)

// substitute replaces Grafana variables: the dashboard's with a placeholder
// label value, Grafana's interval and range variables with a duration. It
// returns the names that are neither.
func substitute(expr string, vars map[string]bool) (string, []string) {
	var undefined []string
	out := varRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := varRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if v, ok := builtinVars[name]; ok {
			return v
		}
		if vars[name] {
			return "var_" + name
		}
		if !slices.Contains(undefined, name) {
			undefined = append(undefined, name)
		}
		return m
	})
	return out, undefined
}

var streamRE = regexp.MustCompile(`\{([^{}]*)\}`)
var streamMatcherRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)

// checkLogStream checks a LogQL query's stream selector labels. LogQL itself
// is not parsed: Loki's parser is AGPL and is not linked into this code.
func checkLogStream(expr string) []string {
	m := streamRE.FindStringSubmatch(expr)
	if m == nil {
		return []string{"LogQL has no stream selector {...}"}
	}
	var problems []string
	for _, lm := range streamMatcherRE.FindAllStringSubmatch(m[1], -1) {
		if !slices.Contains(LogStreamLabels, lm[1]) {
			problems = append(problems, fmt.Sprintf("stream selector uses label %q; the log collector attaches only %s", lm[1], strings.Join(LogStreamLabels, ", ")))
		}
	}
	return problems
}
