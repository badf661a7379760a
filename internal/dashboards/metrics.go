package dashboards

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	prommodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/ml-platform/platform/internal/judge"
	"github.com/ml-platform/platform/internal/telemetry"
)

// AllowList holds the few series a dashboard may query that neither
// ml-inference exports nor the rules file records, each with the reason it
// exists. A test fails when an entry is not used.
var AllowList = map[string]string{
	"ALERTS": "written by vmalert (and Prometheus) for every pending or firing alert of the rules it loads, here the SLO burn-rate alerts of the committed rules file",
}

// RolloutsControllerMetrics are the series of the Argo Rollouts controller
// (v1.10.1, controller/metrics/prommetrics.go) the rollout dashboard reads;
// vmagent scrapes the controller (infrastructure/base/argo-rollouts). The
// controller's Go module cannot be imported here (it pins other Kubernetes
// libraries), so the list is written out, and test/delivery checks every
// name against the /metrics of the real controller it runs.
var RolloutsControllerMetrics = map[string]string{
	"rollout_info":                  "gauge, 1 per Rollout, labels namespace, name, strategy, traffic_router, phase",
	"rollout_info_replicas_desired": "gauge, spec.replicas per Rollout",
	"rollout_info_replicas_updated": "gauge, pods of the current (canary) revision per Rollout",
	"rollout_events_total":          "counter of the Rollout's events, labels namespace, name, type, reason",
	"analysis_run_metric_phase":     "gauge, 1 for each analysis metric's current phase, labels namespace, name, metric, type, dry_run, phase",
}

// Known is the set of metric names a dashboard may select, each with where it
// comes from.
type Known map[string]string

// KnownMetrics is every series name that exists for the dashboards: the
// exposition names of every collector on ml-inference's real telemetry
// registry and on the judge's (internal/judge), every rule recorded in
// rulesFile, the Argo Rollouts controller's RolloutsControllerMetrics, and
// AllowList.
func KnownMetrics(rulesFile string) (Known, error) {
	k := Known{}
	exported, err := ExportedMetrics()
	if err != nil {
		return nil, err
	}
	maps.Copy(k, exported)
	judged, err := JudgeMetrics()
	if err != nil {
		return nil, err
	}
	for name, from := range judged {
		if _, ok := k[name]; !ok {
			k[name] = from
		}
	}
	for name, what := range RolloutsControllerMetrics {
		k[name] = "the Argo Rollouts controller: " + what
	}
	recorded, err := RecordedSeries(rulesFile)
	if err != nil {
		return nil, err
	}
	maps.Copy(k, recorded)
	for name, why := range AllowList {
		k[name] = "allow-list: " + why
	}
	return k, nil
}

// ExportedMetrics lists the series names ml-inference exposes on /metrics:
// its own instruments, as telemetry.Metrics declares them (whether or not a
// vector has a child yet), and every family the registry gathers besides
// them (the Go and process collectors), named by the type the registry
// reports: a counter or gauge is its name, a histogram its _bucket, _sum and
// _count, a summary its name, _sum and _count.
func ExportedMetrics() (Known, error) {
	m := telemetry.NewMetrics(telemetry.BuildInfo{Version: "dashboards", Revision: "check"})
	k := Known{}
	for _, in := range m.Instruments() {
		for _, s := range in.Series() {
			k[s] = "ml-inference " + in.Type + " " + in.Name
		}
	}
	families, err := m.Registry.Gather()
	if err != nil {
		return nil, fmt.Errorf("gathering the telemetry registry: %w", err)
	}
	for _, f := range families {
		name := f.GetName()
		kind := f.GetType().String() // COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM, GAUGE_HISTOGRAM
		from := "ml-inference " + strings.ToLower(kind) + " " + name
		for _, s := range seriesOf(name, kind) {
			if _, ok := k[s]; !ok {
				k[s] = from
			}
		}
	}
	return k, nil
}

// JudgeMetrics lists the series names the judge (`platformctl judge serve`)
// exposes on /metrics: every family its registry gathers, named by type as
// ExportedMetrics names them.
func JudgeMetrics() (Known, error) {
	families, err := judge.NewMetrics([]string{"ml-inference-dashboards"}).Registry.Gather()
	if err != nil {
		return nil, fmt.Errorf("gathering the judge's registry: %w", err)
	}
	k := Known{}
	for _, f := range families {
		for _, s := range seriesOf(f.GetName(), f.GetType().String()) {
			k[s] = "the judge " + strings.ToLower(f.GetType().String()) + " " + f.GetName()
		}
	}
	return k, nil
}

// seriesOf names the series of a family by the type its registry reports.
func seriesOf(name, kind string) []string {
	var suffixes []string
	switch kind {
	case "HISTOGRAM":
		suffixes = []string{"_bucket", "_sum", "_count"}
	case "GAUGE_HISTOGRAM":
		suffixes = []string{"_bucket", "_gsum", "_gcount"}
	case "SUMMARY":
		suffixes = []string{"", "_sum", "_count"}
	default: // counter (its name already ends in _total), gauge, untyped
		suffixes = []string{""}
	}
	out := make([]string, len(suffixes))
	for i, s := range suffixes {
		out[i] = name + s
	}
	return out
}

// RecordedSeries lists the series names a Prometheus rules file records,
// parsed as Prometheus parses it.
func RecordedSeries(rulesFile string) (Known, error) {
	groups, errs := rulefmt.ParseFile(rulesFile, false, prommodel.UTF8Validation)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", rulesFile, errors.Join(errs...))
	}
	k := Known{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				k[r.Record] = "recording rule in " + rulesFile + " (group " + g.Name + ")"
			}
		}
	}
	if len(k) == 0 {
		return nil, fmt.Errorf("%s: records no series", rulesFile)
	}
	return k, nil
}
