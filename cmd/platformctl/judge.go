package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/judge"
	"github.com/ml-platform/platform/internal/telemetry"
)

// defaultJudgeNamespaces are the environments' namespaces
// (ml-inference-<environment> for each environment of
// infrastructure/platform.yaml; a test keeps the two in step).
const defaultJudgeNamespaces = "ml-inference-dev,ml-inference-staging,ml-inference-prod"

// HTTP server timeouts. A judgement reads three range queries within
// --backend-timeout; writing its answer takes far less than writeTimeout.
const (
	judgeReadHeaderTimeout = 5 * time.Second
	judgeReadTimeout       = 10 * time.Second
	judgeWriteTimeout      = 30 * time.Second
	judgeIdleTimeout       = 2 * time.Minute
)

// judgeServe runs the canary judge, Argo Rollouts' web metric provider:
// GET /v1/judge, /healthz, /readyz and /metrics (internal/judge/routes.go).
// It serves until ctx is cancelled (SIGTERM), then drains: /readyz turns 503
// at once, serving goes on for the drain delay, and judgements in flight
// finish before it returns.
func judgeServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl judge serve", stderr)
	addr := fs.String("addr", ":8080", "listen address")
	backendURL := fs.String("prometheus-url", "", "the Prometheus HTTP API to read the canary's series from (VictoriaMetrics), e.g. http://victoria-metrics.observability.svc:8428 (required)")
	namespaces := fs.String("namespaces", defaultJudgeNamespaces, "comma-separated namespaces the judge serves; a request for another is a 400")
	p := judge.DefaultPolicy
	fs.Float64Var(&p.Alpha, "alpha", p.Alpha, "the probability, at most, of failing a canary no worse than stable (over both metrics and every look; each metric spends half)")
	fs.Float64Var(&p.ErrorMargin, "error-margin", p.ErrorMargin, "relative excess of the canary's 5xx rate tolerated: errors fail when it is shown above (1 + margin) times stable's")
	fs.Float64Var(&p.LatencyTolerance, "latency-tolerance", p.LatencyTolerance, "largest P(canary slower than stable) tolerated, in [0.5, 1): latency fails above it when the Mann-Whitney test rejects")
	fs.Int64Var(&p.MinRequests, "min-requests", p.MinRequests, "requests (latency observations) each arm needs for a metric to pass, and the canary for latency to fail")
	fs.Float64Var(&p.StableErrorCeiling, "stable-error-ceiling", p.StableErrorCeiling, "stable's 5xx rate above which no canary passes (inconclusive)")
	backendTimeout := fs.Duration("backend-timeout", 5*time.Second, "time allowed to read one judgement's series (Argo Rollouts' web provider gives up after 10 s by default)")
	drainDelay := fs.Duration("drain-delay", 5*time.Second, "after SIGTERM, keep serving this long with /readyz at 503 so the Service stops sending requests")
	shutdownTimeout := fs.Duration("shutdown-timeout", 15*time.Second, "after the drain delay, wait this long for judgements in flight")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	level, err := telemetry.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	if *backendURL == "" {
		return errors.New("-prometheus-url is required (or PLATFORMCTL_PROMETHEUS_URL), e.g. http://victoria-metrics.observability.svc:8428")
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("judge policy: %w", err)
	}
	switch {
	case *backendTimeout <= 0:
		return errors.New("-backend-timeout must be > 0")
	case *drainDelay < 0 || *shutdownTimeout <= 0:
		return errors.New("-drain-delay must be >= 0 and -shutdown-timeout > 0")
	}
	var served []string
	for _, ns := range strings.Split(*namespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			served = append(served, ns)
		}
	}
	backend, err := judge.NewBackend(*backendURL, &http.Client{})
	if err != nil {
		return fmt.Errorf("-prometheus-url: %w", err)
	}
	log := telemetry.NewLogger(stdout, level)
	health := &judge.Health{}
	handler, err := judge.NewHandler(judge.Deps{
		Backend:        backend,
		Policy:         p,
		Namespaces:     served,
		Metrics:        judge.NewMetrics(served),
		Logger:         log,
		Health:         health,
		BackendTimeout: *backendTimeout,
	})
	if err != nil {
		return fmt.Errorf("-namespaces: %w", err)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on -addr %s: %w", *addr, err)
	}
	defer ln.Close()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: judgeReadHeaderTimeout,
		ReadTimeout:       judgeReadTimeout,
		WriteTimeout:      judgeWriteTimeout,
		IdleTimeout:       judgeIdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.Serve(ln) })
	log.Info("listening", "addr", ln.Addr().String(), "prometheus_url", backend.URL(), "namespaces", served,
		"alpha", p.Alpha, "error_margin", p.ErrorMargin, "latency_tolerance", p.LatencyTolerance,
		"min_requests", p.MinRequests, "stable_error_ceiling", p.StableErrorCeiling)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	health.StartDraining()
	log.Info("draining", "drain_delay", drainDelay.String())
	time.Sleep(*drainDelay)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-serveErr
	log.Info("stopped")
	return nil
}
