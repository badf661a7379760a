package server

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ml-platform/platform/internal/telemetry"
)

// statusRecorder remembers the status code and body size written.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	bytes   int
	written bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.written {
		r.status, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.written {
		r.status, r.written = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// middleware is what runs around every request, composed in one place,
// outermost first:
//
//   - requestContext: the server span (W3C trace context in and out) and the
//     request id, both carried in the request's context;
//   - record: the in-flight gauge, then, once the response is written, the
//     request metrics, the span's attributes and the access log line;
//   - recoverPanic: a panicking handler becomes a logged 500, which record
//     then counts like any other response.
//
// It wraps the mux, so record reads the matched route pattern from the
// request afterwards and metric labels stay bounded.
func (s *server) middleware(mux http.Handler) http.Handler {
	return s.requestContext(s.record(s.recoverPanic(mux)))
}

func (s *server) requestContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := s.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := s.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		s.propagator.Inject(ctx, propagation.HeaderCarrier(w.Header()))

		reqID := r.Header.Get("X-Request-ID")
		if !validRequestID(reqID) {
			reqID = newRequestID()
		}
		w.Header().Set("X-Request-ID", reqID)
		next.ServeHTTP(w, r.WithContext(telemetry.WithRequestID(ctx, reqID)))
	})
}

func (s *server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.metrics.Active.Inc()
		defer s.metrics.Active.Dec()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.finish(r, rec, time.Since(start))
	})
}

func (s *server) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			ctx := r.Context()
			s.log.LogAttrs(ctx, slog.LevelError, "panic serving request", slog.Any("panic", p),
				slog.String("stack", string(debug.Stack())))
			trace.SpanFromContext(ctx).SetStatus(codes.Error, fmt.Sprint(p))
			if rec, ok := w.(*statusRecorder); !ok || !rec.written {
				writeError(w, formatAPI, nil)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// finish records metrics, span attributes and the access log. The model
// version is the one routing put in the response header ("none" when no
// version was chosen).
func (s *server) finish(r *http.Request, rec *statusRecorder, elapsed time.Duration) {
	ctx := r.Context()
	span := trace.SpanFromContext(ctx)
	endpoint := endpointLabel(r.Pattern)
	version := rec.Header().Get(versionHeader)
	if version == "" {
		version = "none"
	}
	status := itoa(rec.status)
	s.metrics.Requests.WithLabelValues(endpoint, status, version).Inc()
	obs := s.metrics.Duration.WithLabelValues(endpoint, version)
	sc := span.SpanContext()
	if sc.IsSampled() {
		// Exemplars link a latency bucket to the trace that landed in it.
		obs.(prometheus.ExemplarObserver).ObserveWithExemplar(elapsed.Seconds(), prometheus.Labels{"trace_id": sc.TraceID().String()})
	} else {
		obs.Observe(elapsed.Seconds())
	}
	if span.IsRecording() {
		span.SetName(r.Method + " " + endpoint)
		span.SetAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("http.route", endpoint),
			attribute.String("url.path", r.URL.Path),
			attribute.Int("http.response.status_code", rec.status),
			attribute.String("model.version", version),
		)
		if rec.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rec.status))
		}
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("endpoint", endpoint),
		slog.Int("status", rec.status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int("bytes", rec.bytes),
		slog.String("model_version", version),
	)
}

// endpointLabel turns a mux pattern ("POST /predict") into the route label
// ("/predict"); requests that matched nothing share one label.
func endpointLabel(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	switch pattern {
	case "", "/":
		return "unmatched"
	case "/{$}":
		return "/"
	}
	return pattern
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		x := rand.Uint64()
		for j := range 8 {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return hex.EncodeToString(b[:])
}

// inference wraps every inference endpoint: load shedding, then (test builds
// only) injected faults, then routing. All three run inside the observing
// middleware, so their responses are counted, traced and logged like any
// other.
func (s *server) inference(format errorFormat, h routedHandler) http.Handler {
	return inferenceHandler{s.shed(format, s.injectFault(format, s.route(format, h)))}
}

// inferenceHandler marks the routes that serve inference (user traffic the
// SLOs count), so routes() can list their endpoints for
// telemetry.Metrics.InitErrorSeries.
type inferenceHandler struct{ http.Handler }

// injectFault delays the requests by what Deps.Fault says (a slower
// version), then fails the ones it picks with a 500 and the contract's error
// body. The delay ends early when the client goes away. Without Deps.Fault
// (every production build) it returns next itself: the handler chain is
// exactly what it was.
func (s *server) injectFault(format errorFormat, next http.Handler) http.Handler {
	if s.fault == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delay, fail := s.fault()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
			}
		}
		if fail {
			writeError(w, format, errorf(http.StatusInternalServerError, "fault_injected", "failed on purpose by fault injection (test build)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// shed refuses inference work beyond the in-flight limit with 503 and
// Retry-After, so latency stays bounded under overload instead of collapsing.
func (s *server) shed(format errorFormat, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		if n > int64(s.cfg.Limits.MaxInFlight) {
			s.metrics.Shed.Inc()
			e := errorf(http.StatusServiceUnavailable, "overloaded", "server is at its limit of %d concurrent requests; retry shortly", s.cfg.Limits.MaxInFlight)
			e.RetryAfter = 1
			writeError(w, format, e)
			return
		}
		next.ServeHTTP(w, r)
	})
}
