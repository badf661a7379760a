package server

import (
	"fmt"
	"net/http"
	"strings"
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
	// Warnings say what is degraded while the server stays ready: a failed
	// refresh, a version served from the local cache, an alias whose new
	// target was refused.
	Warnings []string `json:"warnings,omitempty"`
}

// ready reports whether the server should receive traffic, and why not.
func (s *server) ready() (bool, string) {
	switch {
	case s.health.Draining():
		return false, "draining: shutdown in progress"
	case s.models.Current().Len() == 0:
		if err := s.models.Status().LastError; err != nil {
			return false, "no model version is loaded: " + err.Error()
		}
		return false, "no model version is loaded"
	}
	return true, ""
}

// warnings describe what a ready server serves in a degraded way.
func (s *server) warnings(set *registry.Set) []string {
	var out []string
	if st := s.models.Status(); st.LastError != nil && set.Len() > 0 {
		out = append(out, fmt.Sprintf("the latest model refresh (%s) failed, so what could not be refreshed keeps its previous version: %v",
			st.LastErrorAt.Format(time.RFC3339), st.LastError))
	}
	for _, name := range set.Versions() {
		v, _ := set.Get(name)
		o := v.Origin
		if o == nil {
			continue
		}
		label := name
		if len(o.Aliases) > 0 {
			label += " (" + strings.Join(o.Aliases, ", ") + ")"
		}
		if o.FromCache {
			out = append(out, label+" is served from the local model cache: the registry could not be asked since start")
		}
		if o.Stale != "" {
			out = append(out, label+": "+o.Stale)
		}
	}
	return out
}

func (s *server) handleReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := s.models.Current()
		if ok, reason := s.ready(); !ok {
			encode(w, http.StatusServiceUnavailable, readyResponse{Status: "not_ready", Reason: reason, Versions: set.Versions()})
			return
		}
		encode(w, http.StatusOK, readyResponse{Status: "ready", Versions: set.Versions(), Warnings: s.warnings(set)})
	})
}

type metricsInfo struct {
	Accuracy *float64 `json:"accuracy"`
	F1Score  *float64 `json:"f1_score"`
}

type modelInfo struct {
	ModelName    string      `json:"model_name"`
	Version      string      `json:"version"`
	Kind         string      `json:"kind"`
	DeployedAt   string      `json:"deployed_at"`
	Metrics      metricsInfo `json:"metrics"`
	TrainingDate string      `json:"training_date"`
	// RunID is the registry's run for a registry version, else model.json's.
	RunID          string        `json:"run_id"`
	TrafficPercent *float64      `json:"traffic_percent,omitempty"`
	Registry       *registryInfo `json:"registry,omitempty"`
}

// registryInfo is where a registry version came from (registry.Origin).
type registryInfo struct {
	Name            string             `json:"name"`
	Version         string             `json:"version"`
	Aliases         []string           `json:"aliases"`
	RunID           string             `json:"run_id"`
	RunMetrics      map[string]float64 `json:"run_metrics"`
	Source          string             `json:"source"`
	Digest          string             `json:"digest"`
	ArtifactVersion string             `json:"artifact_version"`
	FromCache       bool               `json:"from_cache"`
	Stale           string             `json:"stale,omitempty"`
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
	if o := v.Origin; o != nil {
		info.RunID = o.RunID
		aliases := o.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		metrics := o.RunMetrics
		if metrics == nil {
			metrics = map[string]float64{}
		}
		info.Registry = &registryInfo{Name: o.Model, Version: o.Version, Aliases: aliases, RunID: o.RunID, RunMetrics: metrics,
			Source: o.Source, Digest: o.Digest, ArtifactVersion: o.ArtifactVersion, FromCache: o.FromCache, Stale: o.Stale}
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
	Models  []modelInfo        `json:"models"`
	Traffic map[string]float64 `json:"traffic"`
	// Aliases maps each followed registry alias to the version it serves.
	Aliases      map[string]string `json:"aliases,omitempty"`
	StickyHeader string            `json:"sticky_header,omitempty"`
}

func (s *server) handleModels() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := s.models.Current()
		split := s.router.Split(set)
		out := modelsResponse{Traffic: split, Aliases: set.Aliases(), StickyHeader: s.cfg.StickyHeader, Models: []modelInfo{}}
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
