package mlflow

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"
)

// CreateRegisteredModelRequest describes a new registered model.
type CreateRegisteredModelRequest struct {
	Name        string
	Description string
	Tags        KeyValues
}

// CreateRegisteredModel creates a model in the registry (ErrAlreadyExists if
// the name is taken).
func (c *Client) CreateRegisteredModel(ctx context.Context, r CreateRegisteredModelRequest) (RegisteredModel, error) {
	in := struct {
		Name        string    `json:"name"`
		Description string    `json:"description,omitempty"`
		Tags        KeyValues `json:"tags,omitempty"`
	}{r.Name, r.Description, r.Tags}
	var out struct {
		Model RegisteredModel `json:"registered_model"`
	}
	if err := c.send(ctx, "POST", "/api/2.0/mlflow/registered-models/create", in, &out); err != nil {
		return RegisteredModel{}, fmt.Errorf("mlflow: create registered model %q: %w", r.Name, err)
	}
	return out.Model, nil
}

// GetRegisteredModel returns a registered model with its tags, aliases and
// the latest version.
func (c *Client) GetRegisteredModel(ctx context.Context, name string) (RegisteredModel, error) {
	var out struct {
		Model RegisteredModel `json:"registered_model"`
	}
	if err := c.get(ctx, "/api/2.0/mlflow/registered-models/get", url.Values{"name": {name}}, &out); err != nil {
		return RegisteredModel{}, fmt.Errorf("mlflow: get registered model %q: %w", name, err)
	}
	return out.Model, nil
}

// SearchRequest selects registered models or model versions. Filter uses
// MLflow's search syntax: `name = 'sentiment'`, `name LIKE 'sent%'`,
// `tags.team = 'ml'`; for versions also `run_id = '...'`.
type SearchRequest struct {
	Filter     string
	OrderBy    []string // e.g. "name ASC", "version_number DESC"
	MaxResults int      // 0: MLflow's default (100 models, 10000 versions)
	PageToken  string
}

// RegisteredModelsPage is one page of registered models; NextPageToken is ""
// on the last.
type RegisteredModelsPage struct {
	Models        []RegisteredModel `json:"registered_models"`
	NextPageToken string            `json:"next_page_token"`
}

// SearchRegisteredModels returns one page of the registered models that
// match.
func (c *Client) SearchRegisteredModels(ctx context.Context, r SearchRequest) (RegisteredModelsPage, error) {
	var out RegisteredModelsPage
	q := searchQuery(r.Filter, r.OrderBy, r.MaxResults, r.PageToken)
	if err := c.get(ctx, "/api/2.0/mlflow/registered-models/search", q, &out); err != nil {
		return RegisteredModelsPage{}, fmt.Errorf("mlflow: search registered models (filter %q): %w", r.Filter, err)
	}
	return out, nil
}

// SetRegisteredModelTag sets (or overwrites) a tag of a registered model.
func (c *Client) SetRegisteredModelTag(ctx context.Context, name, key, value string) error {
	in := struct {
		Name  string `json:"name"`
		Key   string `json:"key"`
		Value string `json:"value"`
	}{name, key, value}
	if err := c.send(ctx, "POST", "/api/2.0/mlflow/registered-models/set-tag", in, nil); err != nil {
		return fmt.Errorf("mlflow: set tag %q of registered model %q: %w", key, name, err)
	}
	return nil
}

// CreateModelVersionRequest describes a new model version. Source is where
// its files are; for a model trained in a run it is a path below the run's
// artifact URI (RunInfo.ArtifactURI + "/model"), and RunID must then name
// that run: MLflow refuses a run-relative source without it.
type CreateModelVersionRequest struct {
	Name        string
	Source      string
	RunID       string
	Description string
	Tags        KeyValues
}

// CreateModelVersion registers the next version of a registered model. With
// a SQL store the version is READY at once; WaitModelVersionReady covers
// stores that register asynchronously.
func (c *Client) CreateModelVersion(ctx context.Context, r CreateModelVersionRequest) (ModelVersion, error) {
	in := struct {
		Name        string    `json:"name"`
		Source      string    `json:"source"`
		RunID       string    `json:"run_id,omitempty"`
		Description string    `json:"description,omitempty"`
		Tags        KeyValues `json:"tags,omitempty"`
	}{r.Name, r.Source, r.RunID, r.Description, r.Tags}
	var out struct {
		Version ModelVersion `json:"model_version"`
	}
	if err := c.send(ctx, "POST", "/api/2.0/mlflow/model-versions/create", in, &out); err != nil {
		return ModelVersion{}, fmt.Errorf("mlflow: create a version of model %q from %s: %w", r.Name, r.Source, err)
	}
	return out.Version, nil
}

// GetModelVersion returns one version of a registered model.
func (c *Client) GetModelVersion(ctx context.Context, name, version string) (ModelVersion, error) {
	var out struct {
		Version ModelVersion `json:"model_version"`
	}
	err := c.get(ctx, "/api/2.0/mlflow/model-versions/get", url.Values{"name": {name}, "version": {version}}, &out)
	if err != nil {
		return ModelVersion{}, fmt.Errorf("mlflow: get model %q version %s: %w", name, version, err)
	}
	return out.Version, nil
}

// ModelVersionsPage is one page of model versions; NextPageToken is "" on the
// last.
type ModelVersionsPage struct {
	Versions      []ModelVersion `json:"model_versions"`
	NextPageToken string         `json:"next_page_token"`
}

// SearchModelVersions returns one page of the model versions that match.
// Their Aliases are empty: MLflow 3.17.2 fills them in for GetModelVersion
// and GetModelVersionByAlias only (RegisteredModel.Aliases has them all).
func (c *Client) SearchModelVersions(ctx context.Context, r SearchRequest) (ModelVersionsPage, error) {
	var out ModelVersionsPage
	q := searchQuery(r.Filter, r.OrderBy, r.MaxResults, r.PageToken)
	if err := c.get(ctx, "/api/2.0/mlflow/model-versions/search", q, &out); err != nil {
		return ModelVersionsPage{}, fmt.Errorf("mlflow: search model versions (filter %q): %w", r.Filter, err)
	}
	return out, nil
}

// SetModelVersionTag sets (or overwrites) a tag of a model version.
func (c *Client) SetModelVersionTag(ctx context.Context, name, version, key, value string) error {
	in := struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Key     string `json:"key"`
		Value   string `json:"value"`
	}{name, version, key, value}
	if err := c.send(ctx, "POST", "/api/2.0/mlflow/model-versions/set-tag", in, nil); err != nil {
		return fmt.Errorf("mlflow: set tag %q of model %q version %s: %w", key, name, version, err)
	}
	return nil
}

// WaitModelVersionReady polls a model version until its status is READY and
// returns it. FAILED_REGISTRATION gives a *RegistrationFailedError; a
// retryable error (the server restarting) is polled through. The wait ends
// with ctx, so give it a deadline.
func (c *Client) WaitModelVersionReady(ctx context.Context, name, version string) (ModelVersion, error) {
	delay := 50 * time.Millisecond
	for {
		mv, err := c.GetModelVersion(ctx, name, version)
		switch {
		case err == nil && mv.Status == VersionReady:
			return mv, nil
		case err == nil && mv.Status == VersionFailedRegistration:
			return mv, fmt.Errorf("mlflow: %w", &RegistrationFailedError{Name: name, Version: version, StatusMessage: mv.StatusMessage})
		case err != nil && !IsRetryable(err):
			return ModelVersion{}, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			last := err
			if last == nil {
				last = fmt.Errorf("status %s", mv.Status)
			}
			return ModelVersion{}, fmt.Errorf("mlflow: wait for model %q version %s to be READY: %w (last: %w)", name, version, ctx.Err(), last)
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
	}
}

// SetAlias points alias at a version of a registered model, moving it if it
// pointed elsewhere. MLflow reserves "latest" and names like "v3".
func (c *Client) SetAlias(ctx context.Context, name, alias, version string) error {
	in := struct {
		Name    string `json:"name"`
		Alias   string `json:"alias"`
		Version string `json:"version"`
	}{name, alias, version}
	if err := c.send(ctx, "POST", "/api/2.0/mlflow/registered-models/alias", in, nil); err != nil {
		return fmt.Errorf("mlflow: set alias %q of model %q to version %s: %w", alias, name, version, err)
	}
	return nil
}

// DeleteAlias removes an alias from a registered model. Removing an alias
// that does not exist succeeds, as in MLflow; an unknown model is
// ErrNotFound.
func (c *Client) DeleteAlias(ctx context.Context, name, alias string) error {
	in := struct {
		Name  string `json:"name"`
		Alias string `json:"alias"`
	}{name, alias}
	if err := c.send(ctx, "DELETE", "/api/2.0/mlflow/registered-models/alias", in, nil); err != nil {
		return fmt.Errorf("mlflow: delete alias %q of model %q: %w", alias, name, err)
	}
	return nil
}

// unknownAlias is how MLflow 3.17.2 words a missing alias, which it reports
// as 400 INVALID_PARAMETER_VALUE, not RESOURCE_DOES_NOT_EXIST
// (SqlAlchemyStore.get_model_version_by_alias).
var unknownAlias = regexp.MustCompile(`^Registered model alias .* not found\.$`)

// GetModelVersionByAlias returns the version an alias points to. An unknown
// model or an unknown alias is ErrNotFound.
func (c *Client) GetModelVersionByAlias(ctx context.Context, name, alias string) (ModelVersion, error) {
	var out struct {
		Version ModelVersion `json:"model_version"`
	}
	err := c.get(ctx, "/api/2.0/mlflow/registered-models/alias", url.Values{"name": {name}, "alias": {alias}}, &out)
	if err != nil {
		var api *APIError
		if errors.As(err, &api) && api.Code == codeInvalidArgument && unknownAlias.MatchString(api.Message) {
			api.missing = true
		}
		return ModelVersion{}, fmt.Errorf("mlflow: get model %q by alias %q: %w", name, alias, err)
	}
	return out.Version, nil
}
