package mlflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/ml-platform/platform/internal/mlflow"
)

// The model lifecycle: a training run with its params, metrics and model
// files, a registered version of it, and the alias that servers follow.
// (Compiled, not run: TestAgainstMLflow runs each of these calls.)
func Example() {
	ctx := context.Background()
	c, err := mlflow.New("http://127.0.0.1:5000") // make mlflow
	if err != nil {
		panic(err)
	}
	exp, err := c.EnsureExperiment(ctx, "sentiment-training")
	if err != nil {
		panic(err)
	}
	run, err := c.CreateRun(ctx, mlflow.CreateRunRequest{ExperimentID: exp, Name: "train-v3"})
	if err != nil {
		panic(err)
	}
	err = c.LogBatch(ctx, run.Info.ID, mlflow.Batch{
		Params:  mlflow.KeyValues{"lr": "0.1"},
		Metrics: []mlflow.Metric{{Key: "accuracy", Value: 0.91}},
	})
	if err != nil {
		panic(err)
	}
	if err := c.UploadFile(ctx, run.Info.ArtifactURI, "model/model.json", "models/v3/model.json"); err != nil {
		panic(err)
	}
	if _, err := c.UpdateRun(ctx, run.Info.ID, mlflow.RunFinished, time.Now()); err != nil {
		panic(err)
	}

	if _, err := c.CreateRegisteredModel(ctx, mlflow.CreateRegisteredModelRequest{Name: "sentiment"}); err != nil && !errors.Is(err, mlflow.ErrAlreadyExists) {
		panic(err)
	}
	mv, err := c.CreateModelVersion(ctx, mlflow.CreateModelVersionRequest{
		Name: "sentiment", Source: run.Info.ArtifactURI + "/model", RunID: run.Info.ID,
	})
	if err != nil {
		panic(err)
	}
	if _, err := c.WaitModelVersionReady(ctx, "sentiment", mv.Version); err != nil {
		panic(err)
	}
	// Promote; a rollback is the same call with the previous version.
	if err := c.SetAlias(ctx, "sentiment", "production", mv.Version); err != nil {
		panic(err)
	}

	// A server follows the alias and fetches the files of its version.
	prod, err := c.GetModelVersionByAlias(ctx, "sentiment", "production")
	if errors.Is(err, mlflow.ErrNotFound) {
		fmt.Println("no production version yet")
		return
	}
	if err != nil {
		panic(err)
	}
	if _, err := c.DownloadArtifact(ctx, prod.Source, "model.json", os.Stdout); err != nil {
		panic(err)
	}
}

// A listener for MLflow's webhooks: verify, then act on alias moves.
func ExampleReadWebhook() {
	const secret = "the webhook's secret" // as given to CreateWebhook
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mlflow/hook", func(w http.ResponseWriter, r *http.Request) {
		d, err := mlflow.ReadWebhook(r, secret, time.Now(), 5*time.Minute)
		if errors.Is(err, mlflow.ErrWebhookUnverified) {
			http.Error(w, "unverified", http.StatusUnauthorized)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if d.Event() == mlflow.EventAliasCreated {
			var a mlflow.AliasEventData
			if err := json.Unmarshal(d.Data, &a); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Printf("%s: alias %s now points to version %s\n", a.Name, a.Alias, a.Version)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	// Serve mux from the listener's own http.Server, at the URL given to
	// CreateWebhook.
}
