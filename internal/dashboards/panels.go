package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/logs"
	"github.com/grafana/grafana-foundation-sdk/go/loki"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/tempo"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/grafana/grafana-foundation-sdk/go/units"
)

// Units the panels use (Grafana's unit ids).
const (
	unitReqPerSec = units.RequestsPerSecond
	unitSeconds   = units.Seconds
	unitBytes     = units.BytesIEC
	unitRatio     = units.PercentUnit // 0..1 shown as a percentage
	unitPercent   = units.Percent     // 0..100
	unitShort     = units.Short
	unitOpsPerSec = "ops"
)

// promQuery is a PromQL query for the VictoriaMetrics datasource.
type promQuery = *prometheus.DataqueryBuilder

// prom is a range query on VictoriaMetrics, written in PromQL.
func prom(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(metricsDS).
		EditorMode(prometheus.QueryEditorModeCode).
		Expr(expr).
		LegendFormat(legend).
		Range()
}

// promInstant is an instant query: one value per series at the end of the
// range (used with $__range for "over the selected time range").
func promInstant(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(metricsDS).
		EditorMode(prometheus.QueryEditorModeCode).
		Expr(expr).
		LegendFormat(legend).
		Instant()
}

// step is one threshold: from value (nil: from minus infinity) on, color.
type step struct {
	from  *float64
	color string
}

func at(v float64, color string) step { return step{ptr(v), color} }
func base(color string) step          { return step{nil, color} }

func thresholds(steps ...step) *dashboard.ThresholdsConfigBuilder {
	ts := make([]dashboard.Threshold, len(steps))
	for i, s := range steps {
		ts[i] = dashboard.Threshold{Value: s.from, Color: s.color}
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

func legend(mode common.LegendDisplayMode, calcs ...string) *common.VizLegendOptionsBuilder {
	if calcs == nil {
		calcs = []string{}
	}
	return common.NewVizLegendOptionsBuilder().
		DisplayMode(mode).
		Placement(common.LegendPlacementBottom).
		ShowLegend(mode != common.LegendDisplayModeHidden).
		Calcs(calcs)
}

func tooltip() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)
}

func lastValue() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)
}

// timeSeries is a line graph of PromQL queries.
func timeSeries(title, description, unit string, qs ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(metricsDS).
		Unit(unit).
		Legend(legend(common.LegendDisplayModeList)).
		Tooltip(tooltip()).
		DrawStyle(common.GraphDrawStyleLine).
		LineInterpolation(common.LineInterpolationLinear).
		LineWidth(1).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever).
		AxisSoftMin(0)
	for _, q := range qs {
		p.WithTarget(q)
	}
	return p
}

// withThresholdLines draws the thresholds as dashed lines on a time series.
func withThresholdLines(p *timeseries.PanelBuilder, steps ...step) *timeseries.PanelBuilder {
	return p.Thresholds(thresholds(steps...)).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))
}

// stacked stacks a time series' series (shares that add up to a whole).
func stacked(p *timeseries.PanelBuilder) *timeseries.PanelBuilder {
	return p.Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal).Group("A")).FillOpacity(60)
}

// statPanel shows the last value of each query's series.
func statPanel(title, description, unit string, th *dashboard.ThresholdsConfigBuilder, qs ...*prometheus.DataqueryBuilder) *stat.PanelBuilder {
	p := stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(metricsDS).
		Unit(unit).
		Thresholds(th).
		ReduceOptions(lastValue()).
		GraphMode(common.BigValueGraphModeArea).
		ColorMode(common.BigValueColorModeValue).
		JustifyMode(common.BigValueJustifyModeAuto).
		TextMode(common.BigValueTextModeAuto).
		Orientation(common.VizOrientationAuto)
	for _, q := range qs {
		p.WithTarget(q)
	}
	return p
}

// barGauge shows one horizontal bar per series (its last value).
func barGauge(title, description, unit string, th *dashboard.ThresholdsConfigBuilder, qs ...*prometheus.DataqueryBuilder) *bargauge.PanelBuilder {
	p := bargauge.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(metricsDS).
		Unit(unit).
		Thresholds(th).
		ReduceOptions(lastValue()).
		Orientation(common.VizOrientationHorizontal).
		DisplayMode(common.BarGaugeDisplayModeGradient).
		ShowUnfilled(true).
		Legend(legend(common.LegendDisplayModeHidden))
	for _, q := range qs {
		p.WithTarget(q)
	}
	return p
}

// stateTimeline shows when each series had a value (firing alerts).
func stateTimeline(title, description string, qs ...*prometheus.DataqueryBuilder) *statetimeline.PanelBuilder {
	p := statetimeline.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(metricsDS).
		ShowValue(common.VisibilityModeNever).
		MergeValues(true).
		Legend(legend(common.LegendDisplayModeHidden)).
		Tooltip(tooltip()).
		Thresholds(thresholds(base("green"), at(1, "red"))).
		NoValue("no SLO alert firing")
	for _, q := range qs {
		p.WithTarget(q)
	}
	return p
}

// logsPanel shows log lines from Loki, newest first. The Loki datasource's
// derived field on trace_id turns each line's trace id into a Tempo link.
func logsPanel(title, description, expr string) *logs.PanelBuilder {
	return logs.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(logsDS).
		ShowTime(true).
		ShowLabels(false).
		ShowCommonLabels(false).
		WrapLogMessage(true).
		PrettifyLogMessage(false).
		EnableLogDetails(true).
		ShowLogContextToggle(true).
		SortOrder(common.LogsSortOrderDescending).
		DedupStrategy(common.LogsDedupStrategyNone).
		WithTarget(lokiQuery(expr, ""))
}

func lokiQuery(expr, legend string) *loki.DataqueryBuilder {
	q := loki.NewDataqueryBuilder().
		Datasource(logsDS).
		EditorMode(loki.QueryEditorModeCode).
		QueryType("range").
		Expr(expr)
	if legend != "" {
		q.LegendFormat(legend)
	}
	return q
}

// lokiTimeSeries graphs a LogQL metric query.
func lokiTimeSeries(title, description, unit string, qs ...*loki.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(logsDS).
		Unit(unit).
		Legend(legend(common.LegendDisplayModeList)).
		Tooltip(tooltip()).
		DrawStyle(common.GraphDrawStyleBars).
		ShowPoints(common.VisibilityModeNever)
	for _, q := range qs {
		p.WithTarget(q)
	}
	return stacked(p).FillOpacity(80)
}

// traceTable lists traces from Tempo that match a TraceQL query.
func traceTable(title, description, traceQL string) *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(tracesDS).
		WithTarget(tempo.NewDataqueryBuilder().
			Datasource(tracesDS).
			QueryType("traceql").
			Query(traceQL).
			Limit(20).
			TableType(tempo.SearchTableTypeTraces)).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{}))
}

// promTable is a table of an instant PromQL query's series, one row per
// series, its labels as columns (the value column hidden).
func promTable(title, description, expr string) *table.PanelBuilder {
	return table.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(metricsDS).
		WithTarget(promInstant(expr, "").Format(prometheus.PromQueryFormatTable)).
		WithTransformation(dashboard.DataTransformerConfig{
			Id:      "organize",
			Options: map[string]any{"excludeByName": map[string]bool{"Time": true, "Value": true}},
		}).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{}))
}

// withRefID names a query (A, B, ...) unless it already has a name.
func withRefID(t variants.Dataquery, id string) variants.Dataquery {
	switch q := t.(type) {
	case prometheus.Dataquery:
		if q.RefId == nil {
			q.RefId = ptr(id)
		}
		return q
	case loki.Dataquery:
		if q.RefId == nil {
			q.RefId = ptr(id)
		}
		return q
	case tempo.Dataquery:
		if q.RefId == nil {
			q.RefId = ptr(id)
		}
		return q
	}
	return t
}
