package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/ml-platform/platform/internal/mlflow"
)

// VersionInfo is one version with what platformctl model list shows.
type VersionInfo struct {
	mlflow.ModelVersion
	Aliases    []string           // sorted
	RunMetrics map[string]float64 // the run's latest metrics; nil without a run
}

// List returns every version of the model, newest first, with its aliases
// and its run's metrics.
func (r *Registry) List(ctx context.Context) ([]VersionInfo, error) {
	rm, err := r.c.GetRegisteredModel(ctx, r.model)
	if errors.Is(err, mlflow.ErrNotFound) {
		return nil, fmt.Errorf("no registered model %q: register a version first (platformctl model register)", r.model)
	}
	if err != nil {
		return nil, r.reach(err)
	}
	versions, err := r.versions(ctx, "")
	if err != nil {
		return nil, err
	}
	aliases := map[string][]string{}
	for _, a := range rm.Aliases {
		aliases[a.Version] = append(aliases[a.Version], a.Alias)
	}
	runs := map[string]map[string]float64{}
	out := make([]VersionInfo, 0, len(versions))
	for _, v := range versions {
		info := VersionInfo{ModelVersion: v, Aliases: aliases[v.Version]}
		sort.Strings(info.Aliases)
		if v.RunID != "" {
			m, ok := runs[v.RunID]
			if !ok {
				m, err = RunMetrics(ctx, r.c, v.RunID)
				if err != nil && !errors.Is(err, mlflow.ErrNotFound) {
					return nil, r.reach(err)
				}
				runs[v.RunID] = m
			}
			info.RunMetrics = m
		}
		out = append(out, info)
	}
	return out, nil
}

// RunMetrics is the latest value of each metric of a run.
func RunMetrics(ctx context.Context, c *mlflow.Client, runID string) (map[string]float64, error) {
	run, err := c.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	m := make(map[string]float64, len(run.Data.Metrics))
	for _, metric := range run.Data.Metrics {
		m[metric.Key] = metric.Value
	}
	return m, nil
}
