package main

import (
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/inferencetest"
	"github.com/ml-platform/platform/internal/lifecycle"
	"github.com/ml-platform/platform/internal/mlflow"
	"github.com/ml-platform/platform/internal/mlflowtest"
)

// BenchmarkStartToReady is the time from exec to the first 200 from /ready
// (ns/op) with v1, v2 and v3 loaded, in the same run:
//
//   - dir: from the models directory (make run, the image's default);
//   - mlflow-cache: following three registry URIs, with MLflow stopped, so
//     every version comes from the local cache (a pod restarted while the
//     registry is down).
//
// It needs MLFLOW_VENV (make bench exports it). Each iteration starts and
// stops one process; only the start is timed.
func BenchmarkStartToReady(b *testing.B) {
	b.Run("dir", func(b *testing.B) {
		benchStart(b, []string{"--models-dir", repoModels})
	})
	b.Run("mlflow-cache", func(b *testing.B) {
		srv := mlflowtest.Start(b)
		c, err := mlflow.New(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		name := "start-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		reg, err := lifecycle.New(c, name)
		if err != nil {
			b.Fatal(err)
		}
		var uris []string
		for _, v := range []string{"v1", "v2", "v3"} {
			a, err := lifecycle.ReadArtifact(filepath.Join(repoModels, v))
			if err != nil {
				b.Fatal(err)
			}
			res, err := reg.Register(b.Context(), lifecycle.RegisterRequest{Artifact: a, Revision: lifecycle.Revision{Commit: "bench"}, Experiment: name})
			if err != nil {
				b.Fatal(err)
			}
			uris = append(uris, "--model-uri", "models:/"+name+"/"+res.Version.Version)
		}
		cache := b.TempDir()
		args := append([]string{"--model-source", "mlflow", "--mlflow-uri", srv.URL, "--model-cache-dir", cache}, uris...)
		// Warm the cache once, with MLflow up, then take MLflow away.
		p := inferencetest.Run(b, inferencetest.Options{Args: args})
		waitReadyFor(b, p, 120*time.Second)
		if err := p.Stop(10 * time.Second); err != nil {
			b.Fatal(err)
		}
		srv.Stop()
		benchStart(b, args)
	})
}

func benchStart(b *testing.B, args []string) {
	bin, err := inferencetest.Build()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		p, err := inferencetest.Start(inferencetest.Options{Binary: bin, Args: args})
		if err != nil {
			b.Fatal(err)
		}
		waitReadyFor(b, p, 10*time.Second)
		b.StopTimer()
		if err := p.Stop(10 * time.Second); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// waitReadyFor polls /ready every millisecond until it answers 200.
func waitReadyFor(b testing.TB, p *inferencetest.Process, limit time.Duration) {
	b.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(p.URL("/ready")); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("%s not ready after %v:\n%s", p.Addr, limit, p.Tail(20))
}
