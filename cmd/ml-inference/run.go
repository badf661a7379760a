package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/feedback"
	"github.com/ml-platform/platform/internal/lifecycle"
	"github.com/ml-platform/platform/internal/registry"
	"github.com/ml-platform/platform/internal/router"
	"github.com/ml-platform/platform/internal/server"
	"github.com/ml-platform/platform/internal/telemetry"
)

// Set at build time with -ldflags "-X main.version=... -X main.revision=...".
var (
	version  = "dev"
	revision = "unknown"
)

type options struct {
	addr            string
	debugAddr       string
	modelsDir       string
	modelSource     string
	mlflowURI       string
	modelURIs       modelURIs
	modelCacheDir   string
	registryPoll    time.Duration
	traffic         string
	stickyHeader    string
	limits          server.Limits
	drainDelay      time.Duration
	shutdownTimeout time.Duration
	readHeader      time.Duration
	readTimeout     time.Duration
	writeTimeout    time.Duration
	idleTimeout     time.Duration
	watchInterval   time.Duration
	logLevel        string
	logFlush        time.Duration
	logText         bool
	showVersion     bool
	feedbackKeyFile string
	feedback        server.FeedbackConfig
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{limits: server.DefaultLimits, feedback: server.DefaultFeedback}
	fs := config.NewFlagSet("ml-inference", stderr)
	fs.StringVar(&o.addr, "addr", ":8000", "listen address")
	fs.StringVar(&o.debugAddr, "debug-addr", "", "serve Go pprof profiles on this address, e.g. 127.0.0.1:6060 (empty: off; never expose it publicly)")
	fs.StringVar(&o.modelSource, "model-source", "dir", "where models come from: dir (--models-dir) or mlflow (--mlflow-uri, --model-uri)")
	fs.StringVar(&o.modelsDir, "models-dir", "models", "directory with one subdirectory per model version (--model-source dir)")
	fs.StringVar(&o.mlflowURI, "mlflow-uri", lifecycle.DefaultTrackingURI(getenv), "MLflow tracking server (--model-source mlflow; default: $MLFLOW_TRACKING_URI, else http://localhost:5000)")
	fs.Var(&o.modelURIs, "model-uri", "registry version to serve, repeatable or comma-separated: models:/NAME@ALIAS follows an alias, models:/NAME/N pins a version; the first takes unpinned traffic (--model-source mlflow; default models:/"+lifecycle.DefaultModel+"@"+lifecycle.Production+")")
	fs.StringVar(&o.modelCacheDir, "model-cache-dir", "", "writable directory for downloaded models, so a restart while MLflow is down serves the last good ones (--model-source mlflow; required; an emptyDir in Kubernetes)")
	fs.DurationVar(&o.registryPoll, "registry-poll", 10*time.Second, "ask MLflow where the followed aliases point this often (--model-source mlflow)")
	fs.StringVar(&o.traffic, "traffic", "", "weighted split of unpinned traffic, e.g. v1=90,v2=10 (empty: latest version takes all)")
	fs.StringVar(&o.stickyHeader, "sticky-header", "X-User-ID", "request header that keeps a client on one version of the split (empty: none)")
	fs.IntVar(&o.limits.MaxTextLength, "max-text-length", o.limits.MaxTextLength, "maximum characters per text")
	fs.IntVar(&o.limits.MaxBatch, "max-batch", o.limits.MaxBatch, "maximum texts per batch request")
	fs.Int64Var(&o.limits.MaxBodyBytes, "max-body-bytes", o.limits.MaxBodyBytes, "maximum request body size in bytes")
	fs.IntVar(&o.limits.MaxInFlight, "max-inflight", o.limits.MaxInFlight, "concurrent inference requests before shedding load with 503")
	fs.DurationVar(&o.drainDelay, "drain-delay", 5*time.Second, "after SIGTERM, keep serving this long with /ready at 503 so load balancers stop sending traffic")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 20*time.Second, "after the drain delay, wait this long for in-flight requests")
	fs.DurationVar(&o.readHeader, "read-header-timeout", 5*time.Second, "time allowed to read request headers")
	fs.DurationVar(&o.readTimeout, "read-timeout", 10*time.Second, "time allowed to read a whole request")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 15*time.Second, "time allowed to write a response")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 60*time.Second, "keep-alive idle timeout")
	fs.DurationVar(&o.watchInterval, "watch-interval", 0, "poll the models directory for changes this often (0: reload on SIGHUP only)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.logFlush, "log-flush-interval", 100*time.Millisecond, "buffer log lines and write them out this often (0: write each line at once)")
	fs.BoolVar(&o.logText, "log-text", false, "include request texts in debug logs (they may be personal data)")
	fs.StringVar(&o.feedbackKeyFile, "feedback-key-file", "", "file with the HMAC key(s) that sign feedback tokens, one per line, the first signing (every replica needs the same file); empty: feedback disabled, /feedback answers 404")
	fs.DurationVar(&o.feedback.TokenTTL, "feedback-token-ttl", o.feedback.TokenTTL, "how long after a prediction its feedback is accepted")
	fs.IntVar(&o.feedback.ReplayEntries, "feedback-replay-entries", o.feedback.ReplayEntries, "feedback tokens this replica remembers to refuse replays (about 24 bytes each)")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	if err := config.Parse(fs, "ML_INFERENCE", args, getenv); err != nil {
		return nil, err
	}
	l := o.limits
	switch {
	case l.MaxTextLength < 1:
		return nil, errors.New("-max-text-length must be at least 1")
	case l.MaxBatch < 1:
		return nil, errors.New("-max-batch must be at least 1")
	case l.MaxBodyBytes < 1024:
		return nil, errors.New("-max-body-bytes must be at least 1024")
	case l.MaxInFlight < 1:
		return nil, errors.New("-max-inflight must be at least 1")
	case o.drainDelay < 0 || o.shutdownTimeout <= 0:
		return nil, errors.New("-drain-delay must be >= 0 and -shutdown-timeout > 0")
	case o.feedback.TokenTTL < time.Second:
		return nil, errors.New("-feedback-token-ttl must be at least 1s")
	case o.feedback.ReplayEntries < 1:
		return nil, errors.New("-feedback-replay-entries must be at least 1")
	}
	switch o.modelSource {
	case "dir":
	case "mlflow":
		if o.registryPoll < 100*time.Millisecond {
			return nil, errors.New("-registry-poll must be at least 100ms")
		}
		if o.modelCacheDir == "" {
			return nil, errors.New("-model-cache-dir is required with -model-source mlflow: a writable directory where downloaded models are kept, so a restart while MLflow is down serves the last good ones (an emptyDir in Kubernetes)")
		}
		if len(o.modelURIs) == 0 {
			o.modelURIs = modelURIs{{Model: lifecycle.DefaultModel, Alias: lifecycle.Production}}
		}
	default:
		return nil, fmt.Errorf("-model-source %q: want dir or mlflow", o.modelSource)
	}
	return o, nil
}

// run starts the server and blocks until ctx is cancelled (SIGTERM), then
// drains: /ready turns 503 at once, serving goes on for the drain delay, and
// in-flight requests finish before it returns.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.showVersion {
		fmt.Fprintf(stdout, "ml-inference %s (%s)\n", version, revision)
		return nil
	}
	level, err := telemetry.ParseLevel(o.logLevel)
	if err != nil {
		return err
	}
	weights, err := router.ParseWeights(o.traffic)
	if err != nil {
		return err
	}
	var keys *feedback.Keys
	if o.feedbackKeyFile != "" {
		if keys, err = feedback.LoadKeys(o.feedbackKeyFile); err != nil {
			return fmt.Errorf("-feedback-key-file: %w", err)
		}
	}
	logOut := telemetry.NewLogWriter(stdout, o.logFlush)
	defer logOut.Close()
	log := telemetry.NewLogger(logOut, level)
	started := time.Now()

	tracing, err := telemetry.NewTracing(ctx, getenv, version)
	if err != nil {
		return err
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(flushCtx); err != nil {
			log.Error("flush traces", "err", err)
		}
	}()

	metrics := telemetry.NewMetrics(telemetry.BuildInfo{Version: version, Revision: revision})
	rt := router.New(weights)
	onReload := func(models *registry.Live) func(error) {
		return func(err error) {
			result := "success"
			if err != nil {
				result = "error"
			}
			metrics.Reloads.WithLabelValues(result).Inc()
			metrics.SetServing(models.Current().Versions(), rt.Split(models.Current()))
			metrics.SetVersionInfo(versionLabels(models.Current()))
		}
	}
	var models *registry.Live
	if o.modelSource == "dir" {
		// A directory is part of the deployment: without its models the
		// server must not start.
		if models, err = registry.NewLive(ctx, registry.Directory{Root: o.modelsDir}, log); err != nil {
			return err
		}
		models.OnReload = onReload(models)
		for _, w := range weights {
			if _, ok := models.Current().Get(w.Version); !ok {
				log.Warn("traffic names a version that is not loaded; its share goes to the others", "version", w.Version)
			}
		}
	} else {
		// A registry may be down at start: the server listens anyway, not
		// ready until a version is loaded (from MLflow or the cache).
		src, err := newMLflowSource(o, log)
		if err != nil {
			return err
		}
		models = registry.NewLiveUnloaded(src, log)
		models.OnReload = onReload(models)
	}
	metrics.SetServing(models.Current().Versions(), rt.Split(models.Current()))
	metrics.SetVersionInfo(versionLabels(models.Current()))

	health := &server.Health{}
	debugMux := debugHandler()
	var fault func() (time.Duration, bool)
	if faultHook != nil {
		fault = faultHook(debugMux, log)
	}
	handler := server.New(server.Config{
		Service:      "ml-inference",
		Version:      version,
		Limits:       o.limits,
		StickyHeader: o.stickyHeader,
		LogText:      o.logText,
		Feedback:     o.feedback,
	}, server.Deps{
		Models:  models,
		Router:  rt,
		Metrics: metrics,
		Logger:  log,
		Tracer:  tracing.Provider,
		Health:  health,
		Fault:   fault,

		FeedbackKeys: keys,
	})

	// Every listener is opened before anything starts serving: a port that is
	// taken fails start-up with a clear error and a non-zero exit, instead of
	// leaving a half-started process that serves but can never shut down.
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on -addr %s: %w", o.addr, err)
	}
	defer ln.Close()
	var dbg net.Listener
	if o.debugAddr != "" {
		if dbg, err = net.Listen("tcp", o.debugAddr); err != nil {
			return fmt.Errorf("listen on -debug-addr %s: %w", o.debugAddr, err)
		}
		defer dbg.Close()
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: o.readHeader,
		ReadTimeout:       o.readTimeout,
		WriteTimeout:      o.writeTimeout,
		IdleTimeout:       o.idleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	bgCtx, stopBackground := context.WithCancel(ctx)
	defer stopBackground()

	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.Serve(ln) })
	if dbg != nil {
		debugSrv := &http.Server{Handler: debugMux, ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() { debugSrv.Serve(dbg) })
		defer debugSrv.Close()
		log.Info("debug endpoints listening", "addr", dbg.Addr().String())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Go(func() {
		for {
			select {
			case <-bgCtx.Done():
				return
			case <-hup:
				if err := models.Reload(bgCtx); err != nil {
					log.Error("model reload on SIGHUP failed; still serving the previous versions", "err", err)
				}
			}
		}
	})
	switch {
	case o.modelSource == "mlflow":
		wg.Go(func() {
			loadFromRegistry(bgCtx, models, log)
			models.Watch(bgCtx, o.registryPoll)
		})
	case o.watchInterval > 0:
		wg.Go(func() { models.Watch(bgCtx, o.watchInterval) })
	}

	log.Info("listening", "addr", ln.Addr().String(), "version", version, "models", models.Current().Versions(),
		"traffic", o.traffic, "tracing_export", tracing.Exporting, "feedback", feedbackState(keys, o.feedback),
		"startup_ms", float64(time.Since(started).Microseconds())/1000)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	health.StartDraining()
	log.Info("draining", "drain_delay", o.drainDelay.String())
	time.Sleep(o.drainDelay)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
	defer cancel()
	stopBackground()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-serveErr
	log.Info("stopped")
	return nil
}

// feedbackState says in the start-up log whether feedback is on (never a
// key).
func feedbackState(keys *feedback.Keys, cfg server.FeedbackConfig) string {
	if keys == nil {
		return "disabled (no -feedback-key-file)"
	}
	return fmt.Sprintf("enabled: %d key(s), tokens valid %s", keys.Len(), cfg.TokenTTL)
}

// faultHook is nil in every normal build. Only fault_inject.go, compiled with
// -tags faultinject for tests, sets it: it mounts the fault switch on the
// debug mux and returns the per-request decision for server.Deps.Fault.
var faultHook func(debug *http.ServeMux, log *slog.Logger) func() (time.Duration, bool)

// debugHandler serves net/http/pprof on its own mux, never on the API port.
func debugHandler() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// versionLabels describes the served versions for model_version_info: what
// the models dashboard shows per pod (which registry version and alias each
// one serves).
func versionLabels(set *registry.Set) []telemetry.VersionLabels {
	var out []telemetry.VersionLabels
	for _, name := range set.Versions() {
		v, _ := set.Get(name)
		l := telemetry.VersionLabels{Version: name, ArtifactVersion: v.Meta.Version, Kind: v.Meta.Kind, Source: "dir"}
		if o := v.Origin; o != nil {
			l.RegistryVersion, l.Aliases, l.Source = o.Version, strings.Join(o.Aliases, ","), "mlflow"
		}
		out = append(out, l)
	}
	return out
}
