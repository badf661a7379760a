package judge

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Metric families the judge reads (internal/telemetry's contract).
const (
	requestsFamily = "inference_requests_total"
	bucketFamily   = "inference_request_duration_seconds_bucket"
	sumFamily      = "inference_request_duration_seconds_sum"
)

// inferenceEndpoints selects the requests that run a model: /predict,
// /predict/batch and the Open Inference Protocol's infer endpoints (with
// and without a version), not probes or scrapes. The dashboards' panels
// select them the same way; TestEndpointsMatchTheServer checks the matcher
// against the server's routes.
const inferenceEndpoints = `endpoint=~"/predict|/predict/batch|/v2/models/.+/infer"`

// lookback is how far back from each grid instant a series' last sample is
// taken (last_over_time): Prometheus' default lookback delta. It must
// exceed the scrape interval; a series with a sample within it before the
// grid's first instant is one that existed before the window (counted from
// that sample), any other is a new process (counted from 0).
const lookback = 5 * time.Minute

// BackendError is a failure of the metrics backend (unreachable, an error
// answer, an answer that is not a matrix): the judge answers it with a 502,
// never a verdict.
type BackendError struct {
	Op  string
	Err error
}

func (e *BackendError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *BackendError) Unwrap() error { return e.Err }

// Backend reads the counters from a Prometheus HTTP API (VictoriaMetrics'
// /api/v1/query_range) with client_golang's API client.
type Backend struct {
	api promv1.API
	url string
}

// NewBackend is a Backend for the API at address (e.g.
// http://victoria-metrics.observability.svc:8428). client may be nil
// (http.DefaultClient's transport); requests are bounded by their context.
func NewBackend(address string, client *http.Client) (*Backend, error) {
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("metrics backend URL %q: want an absolute http(s) URL such as http://victoria-metrics.observability.svc:8428", address)
	}
	if client == nil {
		client = &http.Client{}
	}
	c, err := api.NewClient(api.Config{Address: address, Client: client})
	if err != nil {
		return nil, fmt.Errorf("metrics backend URL %q: %w", address, err)
	}
	return &Backend{api: promv1.NewAPI(c), url: address}, nil
}

// URL is the backend's address.
func (b *Backend) URL() string { return b.url }

// Ready checks that the backend answers a query.
func (b *Backend) Ready(ctx context.Context) error {
	if _, _, _, err := b.api.Query(ctx, "1", time.Time{}); err != nil {
		return &BackendError{Op: "query " + b.url, Err: err}
	}
	return nil
}

// selector matches one family's series of both arms in the namespace. Its
// values are validated by ParseRequest (a DNS label and two hashes of
// [a-z0-9-]), so they need no escaping.
func selector(family string, r Request) string {
	return fmt.Sprintf(`last_over_time(%s{namespace=%q,%s=~"%s|%s",%s}[%s])`,
		family, r.Namespace, hashLabel, r.Canary, r.Stable, inferenceEndpoints, model.Duration(lookback))
}

// queries are the range queries Fetch runs, by family.
func queries(r Request) (requests, buckets, sums string) {
	return selector(requestsFamily, r), selector(bucketFamily, r), selector(sumFamily, r)
}

// Fetch reads the raw counters of both arms at the grid's instants.
// Warnings the backend returns go to warn.
func (b *Backend) Fetch(ctx context.Context, r Request, g Grid, warn func(query string, warnings []string)) (Series, error) {
	rng := promv1.Range{Start: g.Start, End: g.End(), Step: g.Step}
	var s Series
	qr, qb, qs := queries(r)
	for _, q := range []struct {
		query string
		into  *model.Matrix
	}{{qr, &s.Requests}, {qb, &s.Buckets}, {qs, &s.Sums}} {
		v, warnings, _, err := b.api.QueryRange(ctx, q.query, rng)
		if err != nil {
			return Series{}, &BackendError{Op: "query_range " + q.query, Err: err}
		}
		if len(warnings) > 0 && warn != nil {
			warn(q.query, warnings)
		}
		m, ok := v.(model.Matrix)
		if !ok {
			return Series{}, &BackendError{Op: "query_range " + q.query, Err: fmt.Errorf("answer is a %T, want a matrix", v)}
		}
		*q.into = m
	}
	return s, nil
}
