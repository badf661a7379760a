package judge

import (
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the judge's own instruments, on a registry it owns. Every
// label is bounded: namespace by the namespaces the judge serves (a request
// for another is a 400 before anything is recorded), metric, verdict and arm
// by their constants, code by the handful of statuses the judge answers.
type Metrics struct {
	Registry *prometheus.Registry

	verdicts       *prometheus.CounterVec   // judge_verdicts_total{namespace,verdict}
	metricVerdicts *prometheus.CounterVec   // judge_metric_verdicts_total{namespace,metric,verdict}
	effect         *prometheus.GaugeVec     // judge_effect{namespace,metric}
	pValue         *prometheus.GaugeVec     // judge_p_value{namespace,metric}
	samples        *prometheus.GaugeVec     // judge_samples{namespace,metric,arm}
	looks          *prometheus.GaugeVec     // judge_looks{namespace}
	responses      *prometheus.CounterVec   // judge_http_responses_total{code}
	backend        *prometheus.HistogramVec // judge_backend_request_duration_seconds{outcome}
}

// NewMetrics registers every instrument, and the Go and process
// collectors, on a new registry; the series of every served namespace
// exist from the start (at 0, or NaN for the gauges until a first verdict).
func NewMetrics(namespaces []string) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.verdicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "judge_verdicts_total",
		Help: "Canary judgements answered, by namespace and overall verdict (pass, fail, inconclusive).",
	}, []string{"namespace", "verdict"})
	m.metricVerdicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "judge_metric_verdicts_total",
		Help: "Each metric's verdict in the canary judgements answered, by namespace, metric (errors, latency) and verdict.",
	}, []string{"namespace", "metric", "verdict"})
	m.effect = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "judge_effect",
		Help: "The last judgement's effect: errors, the canary's 5xx rate over stable's (NaN when stable had no 5xx); latency, P(canary slower than stable).",
	}, []string{"namespace", "metric"})
	m.pValue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "judge_p_value",
		Help: "The last judgement's p-value per metric: errors, always valid; latency, Bonferroni-adjusted over the window's looks.",
	}, []string{"namespace", "metric"})
	m.samples = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "judge_samples",
		Help: "The last judgement's sample size per metric and arm: requests (errors) or latency observations (latency).",
	}, []string{"namespace", "metric", "arm"})
	m.looks = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "judge_looks",
		Help: "The number of looks in the last judgement.",
	}, []string{"namespace"})
	m.responses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "judge_http_responses_total",
		Help: "HTTP responses of the judge, by status code (400: the caller's mistake; 502: the metrics backend failed).",
	}, []string{"code"})
	m.backend = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "judge_backend_request_duration_seconds",
		Help:    "Time to read one judgement's series from the metrics backend, by outcome (ok, error).",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"outcome"})
	m.Registry.MustRegister(m.verdicts, m.metricVerdicts, m.effect, m.pValue, m.samples, m.looks, m.responses, m.backend,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, ns := range namespaces {
		for _, v := range Verdicts {
			m.verdicts.WithLabelValues(ns, string(v))
		}
		for _, metric := range []string{MetricErrors, MetricLatency} {
			for _, v := range Verdicts {
				m.metricVerdicts.WithLabelValues(ns, metric, string(v))
			}
			m.effect.WithLabelValues(ns, metric).Set(math.NaN())
			m.pValue.WithLabelValues(ns, metric).Set(math.NaN())
			for _, arm := range []string{"canary", "stable"} {
				m.samples.WithLabelValues(ns, metric, arm)
			}
		}
		m.looks.WithLabelValues(ns)
	}
	for _, outcome := range []string{"ok", "error"} {
		m.backend.WithLabelValues(outcome)
	}
	return m
}

// record exports one judgement.
func (m *Metrics) record(namespace string, r Result) {
	m.verdicts.WithLabelValues(namespace, string(r.Verdict)).Inc()
	m.looks.WithLabelValues(namespace).Set(float64(r.Looks))
	for _, x := range r.Metrics {
		m.metricVerdicts.WithLabelValues(namespace, x.Name, string(x.Verdict)).Inc()
		effect := math.NaN()
		if x.Effect != nil {
			effect = *x.Effect
		}
		m.effect.WithLabelValues(namespace, x.Name).Set(effect)
		m.pValue.WithLabelValues(namespace, x.Name).Set(x.PValue)
		m.samples.WithLabelValues(namespace, x.Name, "canary").Set(float64(x.NCanary))
		m.samples.WithLabelValues(namespace, x.Name, "stable").Set(float64(x.NStable))
	}
}

func (m *Metrics) response(code int) { m.responses.WithLabelValues(strconv.Itoa(code)).Inc() }

func (m *Metrics) backendRequest(d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.backend.WithLabelValues(outcome).Observe(d.Seconds())
}
