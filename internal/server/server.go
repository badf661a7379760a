// Package server is ml-inference's HTTP API: the seed's sentiment endpoints,
// the Open Inference Protocol v2 (KServe/Triton REST), health, metrics, and
// the middleware around them (tracing, request ids, metrics, access logs,
// load shedding, panic recovery).
//
// routes.go is the map of the whole API.
package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ml-platform/platform/internal/feedback"
	"github.com/ml-platform/platform/internal/registry"
	"github.com/ml-platform/platform/internal/router"
	"github.com/ml-platform/platform/internal/telemetry"
)

// Limits bound what one request may ask for.
type Limits struct {
	MaxTextLength int   // characters (Unicode code points) per text
	MaxBatch      int   // texts per batch request
	MaxBodyBytes  int64 // request body size
	MaxInFlight   int   // concurrent inference requests before shedding with 503
}

// DefaultLimits are the documented defaults.
var DefaultLimits = Limits{MaxTextLength: 500, MaxBatch: 20, MaxBodyBytes: 64 << 10, MaxInFlight: 512}

// Config is what the server needs besides its dependencies.
type Config struct {
	Service string // "ml-inference"
	Version string // build version, reported by /health and /v2
	Limits  Limits
	// StickyHeader names the request header whose value keeps a client on
	// one version of a weighted split (e.g. X-User-ID).
	StickyHeader string
	// LogText adds request texts to debug logs. Off by default: texts may be
	// personal data.
	LogText bool
	// Feedback configures POST /feedback when Deps.FeedbackKeys is set.
	Feedback FeedbackConfig
}

// FeedbackConfig bounds the feedback tokens that predictions carry.
type FeedbackConfig struct {
	// TokenTTL is how long after a prediction its feedback is accepted.
	TokenTTL time.Duration
	// ClockSkew is how far in the future a token's issue time may be (the
	// replica that verifies it may have a clock behind the one that signed).
	ClockSkew time.Duration
	// ReplayEntries bounds the replay store: at most this many tokens are
	// remembered (about 24 bytes each, docs/performance.md).
	ReplayEntries int
}

// DefaultFeedback is the documented default.
var DefaultFeedback = FeedbackConfig{TokenTTL: time.Hour, ClockSkew: time.Minute, ReplayEntries: 200_000}

// Health is the server's lifecycle state, shared with main: draining starts
// when SIGTERM arrives and turns /ready to 503 at once.
type Health struct {
	draining atomic.Bool
}

// StartDraining marks the server as going away.
func (h *Health) StartDraining() { h.draining.Store(true) }

// Draining reports whether shutdown has begun.
func (h *Health) Draining() bool { return h.draining.Load() }

// Deps are the server's collaborators, passed explicitly.
type Deps struct {
	Models  *registry.Live
	Router  *router.Router
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
	Tracer  trace.TracerProvider
	Health  *Health
	Now     func() time.Time // nil: time.Now
	// FeedbackKeys sign the feedback token of every prediction and verify
	// POST /feedback. nil disables feedback: predictions carry no token and
	// /feedback answers 404 feedback_disabled.
	FeedbackKeys *feedback.Keys
	// Fault, when set, is asked once per inference request how long to
	// delay it and whether to fail it with a 500. Only test builds set it
	// (cmd/ml-inference built with -tags faultinject, internal/fault); nil
	// leaves the handlers untouched.
	Fault func() (delay time.Duration, fail bool)
}

type server struct {
	cfg        Config
	models     *registry.Live
	router     *router.Router
	metrics    *telemetry.Metrics
	log        *slog.Logger
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	health     *Health
	now        func() time.Time
	fault      func() (time.Duration, bool)
	keys       *feedback.Keys  // nil: feedback disabled
	replays    *feedback.Dedup // with keys
	inFlight   atomic.Int64
	endpoints  []endpointEntry   // GET / "routes", filled in by routes()
	named      map[string]string // GET / "endpoints": the demo's name -> path map
}

// New returns the whole API as one handler.
func New(cfg Config, deps Deps) http.Handler {
	s := newServer(cfg, deps)
	mux := http.NewServeMux()
	s.routes(mux)
	return s.middleware(mux)
}

func newServer(cfg Config, deps Deps) *server {
	s := &server{
		cfg:        cfg,
		models:     deps.Models,
		router:     deps.Router,
		metrics:    deps.Metrics,
		log:        deps.Logger,
		tracer:     deps.Tracer.Tracer("github.com/ml-platform/platform/internal/server"),
		propagator: telemetry.Propagator(),
		health:     deps.Health,
		now:        deps.Now,
		fault:      deps.Fault,
		keys:       deps.FeedbackKeys,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.Limits == (Limits{}) {
		s.cfg.Limits = DefaultLimits
	}
	if s.cfg.Feedback == (FeedbackConfig{}) {
		s.cfg.Feedback = DefaultFeedback
	}
	if s.keys != nil {
		s.replays = feedback.NewDedup(s.cfg.Feedback.TokenTTL, s.cfg.Feedback.ReplayEntries)
	}
	return s
}

var smallInts [600]string

func init() {
	for i := range smallInts {
		smallInts[i] = strconv.Itoa(i)
	}
}

// itoa avoids an allocation for status codes and small lengths.
func itoa(n int) string {
	if n >= 0 && n < len(smallInts) {
		return smallInts[n]
	}
	return strconv.Itoa(n)
}
