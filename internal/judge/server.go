package judge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// Health is the judge's lifecycle state, shared with its command: draining
// starts at SIGTERM and turns /readyz to 503 at once.
type Health struct {
	draining atomic.Bool
}

// StartDraining marks the judge as going away.
func (h *Health) StartDraining() { h.draining.Store(true) }

// Draining reports whether shutdown has begun.
func (h *Health) Draining() bool { return h.draining.Load() }

// Deps are the handler's collaborators, passed explicitly.
type Deps struct {
	Backend *Backend
	Policy  Policy
	// Namespaces are the namespaces the judge serves; a request for
	// another is a 400.
	Namespaces []string
	Metrics    *Metrics // NewMetrics(Namespaces)
	Logger     *slog.Logger
	Health     *Health
	// BackendTimeout bounds one judgement's reads from the backend (and a
	// readiness check). Argo Rollouts' web provider gives up after 10 s by
	// default, so it must be well under that.
	BackendTimeout time.Duration
	Now            func() time.Time // nil: time.Now
}

type server struct {
	Deps
}

// NewHandler returns the judge's HTTP API (routes.go).
func NewHandler(d Deps) (http.Handler, error) {
	if err := d.Policy.Validate(); err != nil {
		return nil, err
	}
	switch {
	case d.Backend == nil || d.Metrics == nil || d.Logger == nil || d.Health == nil:
		return nil, errors.New("judge: Backend, Metrics, Logger and Health are required")
	case len(d.Namespaces) == 0:
		return nil, errors.New("judge: no namespace to serve")
	case d.BackendTimeout <= 0:
		return nil, fmt.Errorf("judge: backend timeout %s must be > 0", d.BackendTimeout)
	}
	for _, ns := range d.Namespaces {
		if !dnsLabel.MatchString(ns) {
			return nil, fmt.Errorf("judge: namespace %q is not a Kubernetes namespace name", ns)
		}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &server{Deps: d}
	return s.middleware(s.mux()), nil
}

func (s *server) served(namespace string) bool { return slices.Contains(s.Namespaces, namespace) }

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// middleware counts every response by status and turns a panic into a JSON
// 500 (logged with its value) instead of a dropped connection.
func (s *server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Logger.ErrorContext(r.Context(), "panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(v))
				if rec.status == 0 {
					writeError(rec, http.StatusInternalServerError, "internal", "", "internal error")
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			s.Metrics.response(status)
		}()
		next.ServeHTTP(rec, r)
	})
}

// errorBody is every error answer: {"error":{"code","message"[,"parameter"]}}.
type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		Parameter string `json:"parameter,omitempty"`
	} `json:"error"`
}

// writeError is the one place error answers are written. param names the
// query parameter at fault, if any.
func writeError(w http.ResponseWriter, status int, code, param, format string, args ...any) {
	var b errorBody
	b.Error.Code, b.Error.Message, b.Error.Parameter = code, fmt.Sprintf(format, args...), param
	encode(w, status, b)
}

// encode writes v as JSON with the given status.
func encode[T any](w http.ResponseWriter, status int, v T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only the judge's own types are encoded, and none holds a NaN
		// or an infinity; failing is a bug.
		http.Error(w, `{"error":{"code":"internal","message":"encode response"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func (s *server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Health.Draining() {
			writeError(w, http.StatusServiceUnavailable, "draining", "", "the judge is shutting down")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.BackendTimeout)
		defer cancel()
		if err := s.Backend.Ready(ctx); err != nil {
			writeError(w, http.StatusServiceUnavailable, "backend_unavailable", "", "the metrics backend does not answer: %v", err)
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready", "backend": s.Backend.URL()})
	})
}

func (s *server) handleJudge() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "query", "the query string is malformed: %v", err)
			return
		}
		req, err := ParseRequest(q, s.served)
		var pe *ParamError
		if errors.As(err, &pe) {
			writeError(w, http.StatusBadRequest, "invalid_parameter", pe.Param, "%s", pe.Error())
			return
		} else if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "", "%v", err)
			return
		}
		log := s.Logger.With("namespace", req.Namespace, "canary", req.Canary, "stable", req.Stable,
			"window", req.Window.String(), "step", req.Step.String())
		grid := GridFor(s.Now(), req.Window, req.Step)

		ctx, cancel := context.WithTimeout(r.Context(), s.BackendTimeout)
		defer cancel()
		fetched := time.Now()
		series, err := s.Backend.Fetch(ctx, req, grid, func(query string, warnings []string) {
			log.WarnContext(ctx, "metrics backend warnings", "query", query, "warnings", warnings)
		})
		s.Metrics.backendRequest(time.Since(fetched), err)
		if err != nil {
			if r.Context().Err() != nil {
				log.InfoContext(r.Context(), "client went away during the judgement", "err", err)
				return
			}
			log.ErrorContext(ctx, "metrics backend failed", "err", err)
			writeError(w, http.StatusBadGateway, "backend_unavailable", "", "reading the canary's series from the metrics backend failed: %v", err)
			return
		}
		looks, err := BuildLooks(grid, req.Canary, req.Stable, series)
		if err != nil {
			log.ErrorContext(ctx, "metrics backend answer unusable", "err", err)
			writeError(w, http.StatusBadGateway, "backend_bad_data", "", "the metrics backend's answer cannot be read: %v", err)
			return
		}
		res := Evaluate(looks, grid.MaxLooks(), s.Policy)
		s.Metrics.record(req.Namespace, res)
		attrs := []any{"verdict", res.Verdict, "looks", res.Looks, "reason", res.Reason,
			"duration_ms", float64(time.Since(began).Microseconds()) / 1000}
		for _, m := range res.Metrics {
			attrs = append(attrs, m.Name, string(m.Verdict))
		}
		log.InfoContext(ctx, "judged", attrs...)
		encode(w, http.StatusOK, res)
	})
}
