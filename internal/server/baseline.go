package server

import (
	"encoding/json"
	"net/http"
	"time"
)

// BareHandler is the performance baseline for `make bench`: the least a
// JSON API can do for POST /predict on this machine. It decodes the same
// request and encodes a response of the same shape with encoding/json, with
// no model, routing, validation, metrics, logs or tracing.
func BareHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Text string `json:"text"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(predictResponse{
			Text:         req.Text,
			Sentiment:    "neutral",
			Confidence:   0.5,
			Timestamp:    time.Now().UTC().Format(time.RFC3339Nano),
			ModelVersion: "baseline",
		})
	})
}
