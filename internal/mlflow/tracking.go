package mlflow

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"
)

// GetExperimentByName returns the experiment named name (ErrNotFound if
// there is none).
func (c *Client) GetExperimentByName(ctx context.Context, name string) (Experiment, error) {
	var out struct {
		Experiment Experiment `json:"experiment"`
	}
	err := c.get(ctx, "/api/2.0/mlflow/experiments/get-by-name", url.Values{"experiment_name": {name}}, &out)
	if err != nil {
		return Experiment{}, fmt.Errorf("mlflow: get experiment %q: %w", name, err)
	}
	return out.Experiment, nil
}

// CreateExperiment creates an experiment and returns its id. Its artifact
// location is the server's default (mlflow-artifacts:/<id> with
// --serve-artifacts). A name in use gives ErrAlreadyExists.
func (c *Client) CreateExperiment(ctx context.Context, name string, tags KeyValues) (string, error) {
	in := struct {
		Name string    `json:"name"`
		Tags KeyValues `json:"tags,omitempty"`
	}{name, tags}
	var out struct {
		ID string `json:"experiment_id"`
	}
	if err := c.send(ctx, "POST", "/api/2.0/mlflow/experiments/create", in, &out); err != nil {
		return "", fmt.Errorf("mlflow: create experiment %q: %w", name, err)
	}
	return out.ID, nil
}

// EnsureExperiment returns the id of the experiment named name, creating it
// if it does not exist; two callers racing to create it both get its id.
func (c *Client) EnsureExperiment(ctx context.Context, name string) (string, error) {
	exp, err := c.GetExperimentByName(ctx, name)
	if err == nil {
		return exp.ID, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	id, err := c.CreateExperiment(ctx, name, nil)
	if errors.Is(err, ErrAlreadyExists) {
		exp, err = c.GetExperimentByName(ctx, name)
		return exp.ID, err
	}
	return id, err
}

// CreateRunRequest describes a new run.
type CreateRunRequest struct {
	ExperimentID string
	Name         string    // "" lets MLflow pick a name
	StartTime    time.Time // zero: now (MLflow itself would record 0)
	Tags         KeyValues
}

// CreateRun starts a run (status RUNNING) and returns it.
func (c *Client) CreateRun(ctx context.Context, r CreateRunRequest) (Run, error) {
	if r.ExperimentID == "" {
		return Run{}, fmt.Errorf("mlflow: create run: %w: no experiment id", ErrInvalidArgument)
	}
	start := r.StartTime
	if start.IsZero() {
		start = time.Now()
	}
	in := struct {
		ExperimentID string     `json:"experiment_id"`
		Name         string     `json:"run_name,omitempty"`
		StartTime    UnixMillis `json:"start_time"`
		Tags         KeyValues  `json:"tags,omitempty"`
	}{r.ExperimentID, r.Name, Millis(start), r.Tags}
	var out struct {
		Run Run `json:"run"`
	}
	if err := c.send(ctx, "POST", "/api/2.0/mlflow/runs/create", in, &out); err != nil {
		return Run{}, fmt.Errorf("mlflow: create run in experiment %s: %w", r.ExperimentID, err)
	}
	return out.Run, nil
}

// UpdateRun sets a run's status and end time (zero: leave it unset) and
// returns its updated info.
func (c *Client) UpdateRun(ctx context.Context, runID string, status RunStatus, end time.Time) (RunInfo, error) {
	if !status.valid() {
		// MLflow ignores a status it does not know and answers 200.
		return RunInfo{}, fmt.Errorf("mlflow: update run %s: %w: status %q is not one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED", runID, ErrInvalidArgument, status)
	}
	in := struct {
		RunID   string     `json:"run_id"`
		Status  RunStatus  `json:"status"`
		EndTime UnixMillis `json:"end_time,omitempty"`
	}{runID, status, Millis(end)}
	var out struct {
		Info RunInfo `json:"run_info"`
	}
	if err := c.send(ctx, "POST", "/api/2.0/mlflow/runs/update", in, &out); err != nil {
		return RunInfo{}, fmt.Errorf("mlflow: update run %s: %w", runID, err)
	}
	return out.Info, nil
}

// GetRun returns a run with its latest metrics, params and tags.
func (c *Client) GetRun(ctx context.Context, runID string) (Run, error) {
	var out struct {
		Run Run `json:"run"`
	}
	if err := c.get(ctx, "/api/2.0/mlflow/runs/get", url.Values{"run_id": {runID}}, &out); err != nil {
		return Run{}, fmt.Errorf("mlflow: get run %s: %w", runID, err)
	}
	return out.Run, nil
}

// Batch is what LogBatch records on a run. A param, once logged, cannot
// change value (logging the same value again is fine).
type Batch struct {
	Params  KeyValues
	Tags    KeyValues
	Metrics []Metric // a zero Timestamp means now
}

// MLflow's per-request limits on log-batch (mlflow/utils/validation.py).
const (
	maxBatchParamsOrTags = 100
	maxBatchMetrics      = 1000
	maxBatchEntities     = 1000
)

// LogBatch records params, tags and metrics on a run. A batch over MLflow's
// per-request limits (100 params, 100 tags, 1000 metrics, 1000 in all) is
// sent in several requests, in order; if one fails, the ones before it stay
// logged, and sending the same batch again is safe for params and tags
// (metrics get a second point).
func (c *Client) LogBatch(ctx context.Context, runID string, b Batch) error {
	now := Millis(time.Now())
	metrics := make([]Metric, len(b.Metrics))
	for i, m := range b.Metrics {
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			return fmt.Errorf("mlflow: log batch to run %s: %w: metric %q is %v, which JSON cannot carry", runID, ErrInvalidArgument, m.Key, m.Value)
		}
		if m.Timestamp == 0 {
			m.Timestamp = now
		}
		metrics[i] = m
	}
	params, tags := b.Params.list(), b.Tags.list()
	type request struct {
		RunID   string     `json:"run_id"`
		Params  []keyValue `json:"params,omitempty"`
		Tags    []keyValue `json:"tags,omitempty"`
		Metrics []Metric   `json:"metrics,omitempty"`
	}
	for len(params)+len(tags)+len(metrics) > 0 {
		req := request{RunID: runID}
		req.Params, params = take(params, maxBatchParamsOrTags)
		req.Tags, tags = take(tags, maxBatchParamsOrTags)
		req.Metrics, metrics = take(metrics, min(maxBatchMetrics, maxBatchEntities-len(req.Params)-len(req.Tags)))
		if err := c.send(ctx, "POST", "/api/2.0/mlflow/runs/log-batch", req, nil); err != nil {
			return fmt.Errorf("mlflow: log batch to run %s: %w", runID, err)
		}
	}
	return nil
}

func take[T any](s []T, n int) (head, rest []T) {
	n = min(n, len(s))
	return s[:n], s[n:]
}

// ViewType selects runs by lifecycle stage.
type ViewType string

// The view types; "" is ACTIVE_ONLY.
const (
	ActiveOnly  ViewType = "ACTIVE_ONLY"
	DeletedOnly ViewType = "DELETED_ONLY"
	AllRuns     ViewType = "ALL"
)

// SearchRunsRequest selects runs. Filter uses MLflow's search syntax, e.g.
// `params.lr = "0.1" and metrics.accuracy > 0.8` or
// `tags."mlflow.runName" = "train-1"`.
type SearchRunsRequest struct {
	ExperimentIDs []string
	Filter        string
	OrderBy       []string // e.g. "metrics.accuracy DESC"
	MaxResults    int      // 0: MLflow's default (1000)
	PageToken     string
	ViewType      ViewType
}

// RunsPage is one page of runs; NextPageToken is "" on the last.
type RunsPage struct {
	Runs          []Run  `json:"runs"`
	NextPageToken string `json:"next_page_token"`
}

// SearchRuns returns one page of the runs that match.
func (c *Client) SearchRuns(ctx context.Context, r SearchRunsRequest) (RunsPage, error) {
	in := struct {
		ExperimentIDs []string `json:"experiment_ids"`
		Filter        string   `json:"filter,omitempty"`
		OrderBy       []string `json:"order_by,omitempty"`
		MaxResults    int      `json:"max_results,omitempty"`
		PageToken     string   `json:"page_token,omitempty"`
		ViewType      ViewType `json:"run_view_type,omitempty"`
	}{r.ExperimentIDs, r.Filter, r.OrderBy, r.MaxResults, r.PageToken, r.ViewType}
	var out RunsPage
	if err := c.send(ctx, "POST", "/api/2.0/mlflow/runs/search", in, &out); err != nil {
		return RunsPage{}, fmt.Errorf("mlflow: search runs in experiments %v: %w", r.ExperimentIDs, err)
	}
	return out, nil
}

// searchQuery is the query of the registry's GET search endpoints.
func searchQuery(filter string, orderBy []string, maxResults int, pageToken string) url.Values {
	q := url.Values{}
	if filter != "" {
		q.Set("filter", filter)
	}
	for _, o := range orderBy {
		q.Add("order_by", o)
	}
	if maxResults > 0 {
		q.Set("max_results", strconv.Itoa(maxResults))
	}
	if pageToken != "" {
		q.Set("page_token", pageToken)
	}
	return q
}
