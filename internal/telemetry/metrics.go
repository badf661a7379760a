// Package telemetry sets up the three signals: Prometheus metrics on a
// registry the caller owns, JSON logs that carry trace and span ids, and
// OpenTelemetry tracing configured only through the standard OTEL_* variables.
package telemetry

import (
	"maps"
	"runtime"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// LatencyBuckets have a boundary at 0.2 s, the latency SLO's threshold, so the
// SLI is an exact bucket count and not an interpolation.
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2.5, 5}

// ModelBuckets are finer: one model evaluation takes microseconds.
var ModelBuckets = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.2}

// Metrics are the service's instruments. Names and labels are a contract:
// SLO rules, dashboards and canary analysis query them.
type Metrics struct {
	Registry *prometheus.Registry

	Requests        *prometheus.CounterVec   // inference_requests_total{endpoint,status,version}
	Duration        *prometheus.HistogramVec // inference_request_duration_seconds{endpoint,version}
	ModelDuration   *prometheus.HistogramVec // model_inference_duration_seconds{version}
	Active          prometheus.Gauge         // inference_active_requests
	Predictions     *prometheus.CounterVec   // model_predictions_total{version,sentiment}
	Shed            prometheus.Counter       // inference_requests_shed_total
	ModelsLoaded    prometheus.Gauge         // model_versions_loaded
	Reloads         *prometheus.CounterVec   // model_reloads_total{result}
	TrafficWeight   *prometheus.GaugeVec     // model_traffic_weight_percent{version}
	VersionInfo     *prometheus.GaugeVec     // model_version_info{version,artifact_version,kind,registry_version,aliases,source}
	Feedback        *prometheus.CounterVec   // model_feedback_total{version,outcome,routing}
	FeedbackRefused *prometheus.CounterVec   // model_feedback_refused_total{reason}

	instruments []Instrument // what NewMetrics registered, for Instruments

	mu                 sync.Mutex
	inferenceEndpoints []string // InitErrorSeries
	versions           []string // loaded, from SetServing
}

// Instrument describes one metric family the service exports.
type Instrument struct {
	Name   string
	Type   string // counter, gauge or histogram
	Labels []string
}

// Series are the names of the series the instrument exposes: a histogram's
// _bucket, _sum and _count, any other's own name.
func (i Instrument) Series() []string {
	if i.Type == "histogram" {
		return []string{i.Name + "_bucket", i.Name + "_sum", i.Name + "_count"}
	}
	return []string{i.Name}
}

// Instruments lists the service's own instruments (not the Go and process
// collectors, which Registry gathers like any collector), whether or not a
// vector has a child yet. Dashboards and alerts are checked against it.
func (m *Metrics) Instruments() []Instrument { return m.instruments }

// BuildInfo describes the running binary.
type BuildInfo struct {
	Version  string
	Revision string
}

// NewMetrics registers every instrument, plus the Go and process collectors
// and ml_inference_build_info, on a fresh registry. Each instrument is made
// through one of the constructors below, which also records it for
// Instruments: the list cannot miss one.
func NewMetrics(build BuildInfo) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.Requests = m.counterVec("inference_requests_total",
		"HTTP requests served, by route pattern, HTTP status code and model version (\"none\" when no model was involved).",
		"endpoint", "status", "version")
	m.Duration = m.histogramVec("inference_request_duration_seconds",
		"Time from request start to the last byte written, by route pattern and model version.",
		LatencyBuckets, "endpoint", "version")
	m.ModelDuration = m.histogramVec("model_inference_duration_seconds",
		"Time spent in the model (tokenize and score) per text, by model version.",
		ModelBuckets, "version")
	m.Active = m.gauge("inference_active_requests", "Requests being served right now.", nil)
	m.Predictions = m.counterVec("model_predictions_total",
		"Texts classified, by model version and predicted sentiment.", "version", "sentiment")
	m.Shed = m.counter("inference_requests_shed_total", "Requests refused with 503 because the in-flight limit was reached.")
	m.ModelsLoaded = m.gauge("model_versions_loaded", "Model versions currently loaded.", nil)
	m.Reloads = m.counterVec("model_reloads_total", "Model refreshes by result: success (a reload swapped the set), error (a reload or a poll of the source failed; what failed keeps its previous version).", "result")
	m.TrafficWeight = m.gaugeVec("model_traffic_weight_percent",
		"Share of unpinned traffic routed to each loaded model version.", "version")
	m.VersionInfo = m.gaugeVec("model_version_info",
		"Always 1 for each loaded version; labels say what it is: its artifact's own version name, kind, the model registry's version number and the aliases that point at it (empty for the models directory), and its source (dir or mlflow).",
		"version", "artifact_version", "kind", "registry_version", "aliases", "source")
	m.Feedback = m.counterVec("model_feedback_total",
		"User feedback on predictions (POST /feedback), by the version that predicted, whether the prediction was correct, and whether the traffic split chose that version (routing=\"split\") or the client pinned it (\"pinned\"). A/B experiments read routing=\"split\" only.",
		"version", "outcome", "routing")
	m.FeedbackRefused = m.counterVec("model_feedback_refused_total",
		"Feedback not counted, by reason: invalid_token, bad_signature, expired, not_yet_valid, replay, store_full.",
		"reason")
	m.gauge("ml_inference_build_info", "Always 1; labels describe the running build.", prometheus.Labels{
		"version":   build.Version,
		"revision":  build.Revision,
		"goversion": runtime.Version(),
	}).Set(1)
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *Metrics) add(c prometheus.Collector, name, kind string, labels []string) {
	m.Registry.MustRegister(c)
	m.instruments = append(m.instruments, Instrument{Name: name, Type: kind, Labels: labels})
}

func (m *Metrics) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.add(c, name, "counter", labels)
	return c
}

func (m *Metrics) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	m.add(c, name, "counter", nil)
	return c
}

func (m *Metrics) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	m.add(h, name, "histogram", labels)
	return h
}

func (m *Metrics) gauge(name, help string, constLabels prometheus.Labels) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: constLabels})
	m.add(g, name, "gauge", slices.Sorted(maps.Keys(constLabels)))
	return g
}

func (m *Metrics) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	m.add(g, name, "gauge", labels)
	return g
}

// SetServing publishes which versions are loaded and the traffic share of
// each, and creates the server-error series of every loaded version (see
// InitErrorSeries); call it at start and after every reload.
func (m *Metrics) SetServing(versions []string, split map[string]float64) {
	m.ModelsLoaded.Set(float64(len(versions)))
	m.TrafficWeight.Reset()
	for v, pct := range split {
		m.TrafficWeight.WithLabelValues(v).Set(pct)
	}
	m.mu.Lock()
	m.versions = append([]string(nil), versions...)
	m.mu.Unlock()
	m.initErrorSeries()
	for _, v := range versions {
		for _, o := range FeedbackOutcomes {
			for _, r := range FeedbackRoutings {
				m.Feedback.WithLabelValues(v, o, r)
			}
		}
	}
}

// VersionLabels describe one loaded version for model_version_info.
type VersionLabels struct {
	Version, ArtifactVersion, Kind, RegistryVersion, Aliases, Source string
}

// SetVersionInfo publishes model_version_info for exactly the given
// versions (call it with SetServing: after every reload).
func (m *Metrics) SetVersionInfo(versions []VersionLabels) {
	m.VersionInfo.Reset()
	for _, v := range versions {
		m.VersionInfo.WithLabelValues(v.Version, v.ArtifactVersion, v.Kind, v.RegistryVersion, v.Aliases, v.Source).Set(1)
	}
}

// FeedbackOutcomes and FeedbackRoutings are model_feedback_total's outcome
// and routing values. SetServing creates every combination at 0 for each
// loaded version, so an experiment's counts start from a known 0 (see
// InitErrorSeries for why a series should not first appear with its first
// event).
var (
	FeedbackOutcomes = []string{"correct", "incorrect"}
	FeedbackRoutings = []string{"split", "pinned"}
)

// ErrorStatuses are the server errors ml-inference answers inference
// requests with: 500 (a failure) and 503 (shed, or no model loaded).
var ErrorStatuses = []string{"500", "503"}

// InitErrorSeries records the inference endpoints (route patterns) whose
// server-error series are created at 0 before any error happens, for model
// version "none" (errors before a version is chosen) and every loaded
// version. A series that first appears with an outage has no past, and
// VictoriaMetrics' rate() over a window then divides its increase by the
// series' own short life rather than by the window: every window, 3 days
// included, would read the outage's current error rate, and slow-burn
// tickets would fire on a short blip. Created at 0 and scraped from then on,
// the series behave as the SLO maths expects (docs/performance.md, the SLO
// live run).
func (m *Metrics) InitErrorSeries(endpoints []string) {
	m.mu.Lock()
	m.inferenceEndpoints = append([]string(nil), endpoints...)
	m.mu.Unlock()
	m.initErrorSeries()
}

func (m *Metrics) initErrorSeries() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.inferenceEndpoints {
		for _, v := range append([]string{"none"}, m.versions...) {
			for _, status := range ErrorStatuses {
				m.Requests.WithLabelValues(e, status, v)
			}
		}
	}
}
