// Package baseline is the performance baseline of `make bench`: the least a
// JSON API can do for POST /predict on this machine. Both benchmarks that
// compare ml-inference with it use it: the in-process handler benchmark
// (internal/server) and the HTTP load run (test/loadbench).
package baseline

import (
	"encoding/json"
	"net/http"
	"time"
)

// response has the shape of ml-inference's POST /predict answer.
type response struct {
	Text             string  `json:"text"`
	Sentiment        string  `json:"sentiment"`
	Confidence       float64 `json:"confidence"`
	ProcessingTimeMS float64 `json:"processing_time_ms"`
	Timestamp        string  `json:"timestamp"`
	ModelVersion     string  `json:"model_version"`
}

// Handler decodes the same request and encodes a response of the same shape
// with encoding/json, with no model, routing, validation, metrics, logs or
// tracing.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Text string `json:"text"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(response{
			Text:         req.Text,
			Sentiment:    "neutral",
			Confidence:   0.5,
			Timestamp:    time.Now().UTC().Format(time.RFC3339Nano),
			ModelVersion: "baseline",
		})
	})
}
