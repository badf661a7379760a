package dashboards

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
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

// ExportedMetrics lists the series names ml-inference exposes on /metrics,
// from the registry telemetry.NewMetrics builds (instruments, build info, Go
// and process collectors): a counter is its name, a gauge its name, a
// histogram its _bucket, _sum and _count, a summary its name, _sum and
// _count.
//
// A vector with no children is described but not gathered, so every vector in
// telemetry.Metrics first gets one child (with placeholder label values);
// then every described metric must be among the gathered ones, whose types
// come from the registry itself.
func ExportedMetrics() (Known, error) {
	m := telemetry.NewMetrics(telemetry.BuildInfo{Version: "dashboards", Revision: "check"})
	if err := touchVectors(m); err != nil {
		return nil, err
	}
	families, err := m.Registry.Gather()
	if err != nil && len(families) == 0 {
		return nil, fmt.Errorf("gathering the telemetry registry: %w", err)
	}
	k := Known{}
	gathered := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		gathered[name] = true
		kind := f.GetType().String() // COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM, GAUGE_HISTOGRAM
		from := "ml-inference " + strings.ToLower(kind) + " " + name
		switch kind {
		case "HISTOGRAM":
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				k[name+s] = from
			}
		case "GAUGE_HISTOGRAM":
			for _, s := range []string{"_bucket", "_gsum", "_gcount"} {
				k[name+s] = from
			}
		case "SUMMARY":
			for _, s := range []string{"", "_sum", "_count"} {
				k[name+s] = from
			}
		default: // counter (its name already ends in _total), gauge, untyped
			k[name] = from
		}
	}
	// Every described metric must have been gathered: otherwise its type,
	// and so its series names, would be a guess.
	descs := make(chan *prometheus.Desc)
	go func() { m.Registry.Describe(descs); close(descs) }()
	var missing []string
	for d := range descs {
		name := descName(d)
		if name == "" {
			return nil, fmt.Errorf("telemetry registry: cannot read the name of %s", d)
		}
		// The process collector's set depends on the platform (procfs on
		// Linux, where ml-inference runs); elsewhere some are described and
		// never collected.
		if !gathered[name] && !strings.HasPrefix(name, "process_") {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("telemetry registry: %s described but not gathered (gather error: %v); cannot tell their series names", strings.Join(missing, ", "), err)
	}
	return k, nil
}

// touchVectors creates one child of every metric vector in m, so that the
// registry gathers it. The number of labels is found by trying: a wrong count
// is an error and creates nothing.
func touchVectors(m *telemetry.Metrics) error {
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		get := v.Field(i).MethodByName("GetMetricWithLabelValues")
		if !get.IsValid() {
			continue
		}
		ok := false
		for n := 0; n <= 16 && !ok; n++ {
			args := make([]reflect.Value, n)
			for j := range args {
				args[j] = reflect.ValueOf("dashboards-check")
			}
			out := get.Call(args)
			ok = out[len(out)-1].IsNil()
		}
		if !ok {
			return fmt.Errorf("telemetry.Metrics.%s: no label count creates a child", v.Type().Field(i).Name)
		}
	}
	return nil
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]*)"`)

// descName reads a descriptor's metric name; client_golang exposes it only
// through String().
func descName(d *prometheus.Desc) string {
	if m := fqNameRE.FindStringSubmatch(d.String()); m != nil {
		return m[1]
	}
	return ""
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
