package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// route is one endpoint of the API. name, if set, is its key in the root
// document's "endpoints" map (the original demo's shape).
type route struct {
	method, path, name, summary string
	handler                     http.Handler
}

// apiRoutes is the map of the whole API. `GET /` lists it.
func (s *server) apiRoutes() []route {
	return []route{
		{"GET", "/{$}", "", "service, version and endpoints", s.handleRoot()},
		{"POST", "/predict", "predict", "classify one text", s.inference(formatAPI, s.handlePredict())},
		{"POST", "/predict/batch", "predict_batch", "classify 1 to 20 texts", s.inference(formatAPI, s.handlePredictBatch())},
		{"POST", "/feedback", "", "a user's verdict (the true label) on an earlier prediction, by its feedback_token", s.handleFeedback()},
		{"GET", "/health", "health", "liveness", s.handleHealth()},
		{"GET", "/ready", "ready", "readiness: a model is loaded and the server is not draining", s.handleReady()},
		{"GET", "/model/info", "model_info", "the version a request would get (honours X-Model-Version)", s.route(formatAPI, s.handleModelInfo())},
		{"GET", "/models", "models", "every loaded version and the traffic split", s.handleModels()},
		{"GET", "/metrics", "metrics", "Prometheus metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{EnableOpenMetrics: true})},

		// Open Inference Protocol v2 (KServe/Triton REST).
		{"GET", "/v2", "", "OIP server metadata", s.handleOIPServerMetadata()},
		{"GET", "/v2/health/live", "", "OIP server liveness", s.handleOIPLive()},
		{"GET", "/v2/health/ready", "", "OIP server readiness", s.handleOIPReady()},
		{"GET", "/v2/models/{name}", "", "OIP model metadata", s.handleOIPModelMetadata()},
		{"GET", "/v2/models/{name}/versions/{version}", "", "OIP model version metadata", s.handleOIPModelMetadata()},
		{"GET", "/v2/models/{name}/ready", "", "OIP model readiness", s.handleOIPModelReady()},
		{"GET", "/v2/models/{name}/versions/{version}/ready", "", "OIP model version readiness", s.handleOIPModelReady()},
		{"POST", "/v2/models/{name}/infer", "", "OIP inference (BYTES input of texts)", s.inference(formatOIP, s.handleOIPInfer())},
		{"POST", "/v2/models/{name}/versions/{version}/infer", "", "OIP inference on a version", s.inference(formatOIP, s.handleOIPInfer())},
	}
}

// routes registers every route, a JSON 405 for the other methods on each
// path, and a JSON 404 for everything else.
func (s *server) routes(mux *http.ServeMux) {
	s.named = map[string]string{}
	var inference []string
	for _, rt := range s.apiRoutes() {
		path := rt.path
		if path == "/{$}" {
			path = "/"
		}
		s.endpoints = append(s.endpoints, endpointEntry{rt.method, path, rt.summary})
		if rt.name != "" {
			s.named[rt.name] = path
		}
		mux.Handle(rt.method+" "+rt.path, rt.handler)
		mux.Handle(rt.path, methodNotAllowed(rt.method, oipPath(rt.path)))
		if _, ok := rt.handler.(inferenceHandler); ok {
			inference = append(inference, endpointLabel(rt.path))
		}
	}
	s.metrics.InitErrorSeries(inference)
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := formatAPI
		if oipPath(r.URL.Path) {
			format = formatOIP
		}
		writeError(w, format, errorf(http.StatusNotFound, "not_found", "no endpoint %s %s; GET / lists the endpoints", r.Method, r.URL.Path))
	}))
}

func oipPath(p string) bool { return p == "/v2" || len(p) > 4 && p[:4] == "/v2/" }

func methodNotAllowed(allow string, oip bool) http.Handler {
	if allow == "GET" {
		allow = "GET, HEAD"
	}
	format := formatAPI
	if oip {
		format = formatOIP
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, format, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "method %s is not allowed on %s; use %s", r.Method, r.URL.Path, allow))
	})
}
