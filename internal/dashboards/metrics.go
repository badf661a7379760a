package dashboards

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	prommodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/ml-platform/platform/internal/telemetry"
)

// AllowList holds the few series a dashboard may query that neither
// ml-inference exports nor the rules file records, each with the reason it
// exists. A test fails when an entry is not used.
var AllowList = map[string]string{
	"ALERTS": "written by vmalert (and Prometheus) for every pending or firing alert of the rules it loads, here the SLO burn-rate alerts of the committed rules file",
}

// Known is the set of metric names a dashboard may select, each with where it
// comes from.
type Known map[string]string

// KnownMetrics is every series name that exists for ml-inference: the
// exposition names of every collector on the real telemetry registry, every
// rule recorded in rulesFile, and AllowList.
func KnownMetrics(rulesFile string) (Known, error) {
	k := Known{}
	exported, err := ExportedMetrics()
	if err != nil {
		return nil, err
	}
	maps.Copy(k, exported)
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
		for _, s := range suffixes {
			if _, ok := k[name+s]; !ok {
				k[name+s] = from
			}
		}
	}
	return k, nil
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
