package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/ml-platform/platform/internal/lifecycle"
	"github.com/ml-platform/platform/internal/mlflow"
	"github.com/ml-platform/platform/internal/registry"
	"github.com/ml-platform/platform/internal/registry/mlflowsource"
)

// modelURIs is the repeatable --model-uri flag; one value may also list
// several, comma-separated (the form an environment variable can hold).
type modelURIs []lifecycle.ModelURI

func (m *modelURIs) String() string {
	names := make([]string, len(*m))
	for i, u := range *m {
		names[i] = u.String()
	}
	return strings.Join(names, ",")
}

func (m *modelURIs) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		u, err := lifecycle.ParseModelURI(strings.TrimSpace(part))
		if err != nil {
			return err
		}
		*m = append(*m, u)
	}
	return nil
}

// registryCallTimeout bounds each MLflow API call of the source, so a
// registry that hangs delays a poll by seconds, not minutes.
const registryCallTimeout = 5 * time.Second

func newMLflowSource(o *options, log *slog.Logger) (*mlflowsource.Source, error) {
	c, err := mlflow.New(o.mlflowURI, mlflow.WithTimeout(registryCallTimeout))
	if err != nil {
		return nil, err
	}
	return mlflowsource.New(mlflowsource.Config{Client: c, URIs: o.modelURIs, CacheDir: o.modelCacheDir, Log: log})
}

// loadFromRegistry is the first load of a registry source, in the
// background of a listening server, and says plainly how it went.
func loadFromRegistry(ctx context.Context, models *registry.Live, log *slog.Logger) {
	err := models.Reload(ctx)
	switch {
	case err == nil:
	case ctx.Err() != nil:
	case models.Current().Len() > 0:
		log.Warn("serving what could be loaded (from MLflow or the local cache); ready, and retrying the rest every poll",
			"versions", models.Current().Versions(), "err", err.Error())
	default:
		log.Error("no model version loaded: MLflow could not be reached or refused every version, and the cache has none; not ready (503) until one loads, retrying with backoff",
			"source", models.Status().Source, "err", err.Error())
	}
}
