// Package telemetry sets up the three signals: Prometheus metrics on a
// registry the caller owns, JSON logs that carry trace and span ids, and
// OpenTelemetry tracing configured only through the standard OTEL_* variables.
package telemetry

import (
	"runtime"
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

	Requests      *prometheus.CounterVec   // inference_requests_total{endpoint,status,version}
	Duration      *prometheus.HistogramVec // inference_request_duration_seconds{endpoint,version}
	ModelDuration *prometheus.HistogramVec // model_inference_duration_seconds{version}
	Active        prometheus.Gauge         // inference_active_requests
	Predictions   *prometheus.CounterVec   // model_predictions_total{version,sentiment}
	Shed          prometheus.Counter       // inference_requests_shed_total
	ModelsLoaded  prometheus.Gauge         // model_versions_loaded
	Reloads       *prometheus.CounterVec   // model_reloads_total{result}
	TrafficWeight *prometheus.GaugeVec     // model_traffic_weight_percent{version}

	mu                 sync.Mutex
	inferenceEndpoints []string // InitErrorSeries
	versions           []string // loaded, from SetServing
}

// BuildInfo describes the running binary.
type BuildInfo struct {
	Version  string
	Revision string
}

// NewMetrics registers every instrument, plus the Go and process collectors
// and ml_inference_build_info, on a fresh registry.
func NewMetrics(build BuildInfo) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inference_requests_total",
			Help: "HTTP requests served, by route pattern, HTTP status code and model version (\"none\" when no model was involved).",
		}, []string{"endpoint", "status", "version"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "inference_request_duration_seconds",
			Help:    "Time from request start to the last byte written, by route pattern and model version.",
			Buckets: LatencyBuckets,
		}, []string{"endpoint", "version"}),
		ModelDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "model_inference_duration_seconds",
			Help:    "Time spent in the model (tokenize and score) per text, by model version.",
			Buckets: ModelBuckets,
		}, []string{"version"}),
		Active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "inference_active_requests",
			Help: "Requests being served right now.",
		}),
		Predictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "model_predictions_total",
			Help: "Texts classified, by model version and predicted sentiment.",
		}, []string{"version", "sentiment"}),
		Shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inference_requests_shed_total",
			Help: "Requests refused with 503 because the in-flight limit was reached.",
		}),
		ModelsLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "model_versions_loaded",
			Help: "Model versions currently loaded.",
		}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "model_reloads_total",
			Help: "Model reload attempts, by result (success or failure).",
		}, []string{"result"}),
		TrafficWeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "model_traffic_weight_percent",
			Help: "Share of unpinned traffic routed to each loaded model version.",
		}, []string{"version"}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ml_inference_build_info",
		Help: "Always 1; labels describe the running build.",
		ConstLabels: prometheus.Labels{
			"version":   build.Version,
			"revision":  build.Revision,
			"goversion": runtime.Version(),
		},
	})
	buildInfo.Set(1)
	reg.MustRegister(m.Requests, m.Duration, m.ModelDuration, m.Active, m.Predictions, m.Shed,
		m.ModelsLoaded, m.Reloads, m.TrafficWeight, buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
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
}

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
