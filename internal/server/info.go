package server

import (
	"net/http"
	"time"

	"github.com/ml-platform/platform/internal/registry"
)

// rootResponse is GET /. Its first four fields are the original demo's root
// document, which clients written for it read: status "running" and
// endpoints as a map from a short name to a path. Routes lists every
// endpoint of the API with its method and summary.
type rootResponse struct {
	Service   string            `json:"service"`
	Version   string            `json:"version"`
	Status    string            `json:"status"`
	Endpoints map[string]string `json:"endpoints"`
	Routes    []endpointEntry   `json:"routes"`
}

type endpointEntry struct {
	Method  string `json:"method"`
	Path    string `json:"path"`
	Summary string `json:"summary"`
}

// handleRoot describes the service; s.endpoints and s.named are filled in by
// routes().
func (s *server) handleRoot() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, rootResponse{Service: s.cfg.Service, Version: s.cfg.Version, Status: "running",
			Endpoints: s.named, Routes: s.endpoints})
	})
}

type healthResponse struct {
	Status    string `json:"status"`
	Service   string `json:"service"`
	Version   string `json:"version"`
	Timestamp string `json:"timestamp"`
}

// handleHealth is liveness: the process serves HTTP. It does not depend on
// models or draining, so Kubernetes never restarts a pod that is draining.
func (s *server) handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, healthResponse{"healthy", s.cfg.Service, s.cfg.Version, s.now().UTC().Format(time.RFC3339Nano)})
	})
}

type readyResponse struct {
	Status   string   `json:"status"`
	Reason   string   `json:"reason,omitempty"`
	Versions []string `json:"versions"`
}

// ready reports whether the server should receive traffic, and why not.
func (s *server) ready() (bool, string) {
	switch {
	case s.health.Draining():
		return false, "draining: shutdown in progress"
	case s.models.Current().Len() == 0:
		return false, "no model version is loaded"
	}
	return true, ""
}

func (s *server) handleReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		versions := s.models.Current().Versions()
		if ok, reason := s.ready(); !ok {
			encode(w, http.StatusServiceUnavailable, readyResponse{"not_ready", reason, versions})
			return
		}
		encode(w, http.StatusOK, readyResponse{Status: "ready", Versions: versions})
	})
}

type metricsInfo struct {
	Accuracy *float64 `json:"accuracy"`
	F1Score  *float64 `json:"f1_score"`
}

type modelInfo struct {
	ModelName      string      `json:"model_name"`
	Version        string      `json:"version"`
	Kind           string      `json:"kind"`
	DeployedAt     string      `json:"deployed_at"`
	Metrics        metricsInfo `json:"metrics"`
	TrainingDate   string      `json:"training_date"`
	RunID          string      `json:"run_id"`
	TrafficPercent *float64    `json:"traffic_percent,omitempty"`
}

func describe(v *registry.Loaded) modelInfo {
	info := modelInfo{
		ModelName:    v.Meta.Name,
		Version:      v.Meta.Version,
		Kind:         v.Meta.Kind,
		DeployedAt:   v.LoadedAt.Format(time.RFC3339),
		TrainingDate: v.Meta.TrainingDate.UTC().Format(time.RFC3339),
		RunID:        v.Meta.RunID,
	}
	if m := v.Meta.Metrics; m != nil {
		info.Metrics = metricsInfo{Accuracy: &m.Accuracy, F1Score: &m.F1Score}
	}
	return info
}

// handleModelInfo describes the version this request would be served by.
func (s *server) handleModelInfo() routedHandler {
	return func(w http.ResponseWriter, r *http.Request, rt routed) {
		encode(w, http.StatusOK, describe(rt.version))
	}
}

type modelsResponse struct {
	Models       []modelInfo        `json:"models"`
	Traffic      map[string]float64 `json:"traffic"`
	StickyHeader string             `json:"sticky_header,omitempty"`
}

func (s *server) handleModels() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := s.models.Current()
		split := s.router.Split(set)
		out := modelsResponse{Traffic: split, StickyHeader: s.cfg.StickyHeader, Models: []modelInfo{}}
		for _, name := range set.Versions() {
			v, _ := set.Get(name)
			info := describe(v)
			pct := split[name]
			info.TrafficPercent = &pct
			out.Models = append(out.Models, info)
		}
		encode(w, http.StatusOK, out)
	})
}
