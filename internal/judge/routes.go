package judge

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// route is one endpoint of the judge's API.
type route struct {
	method, path, summary string
	handler               http.Handler
}

// routes is the map of the whole API.
func (s *server) routes() []route {
	return []route{
		{"GET", "/healthz", "liveness: the process serves", s.handleHealthz()},
		{"GET", "/readyz", "readiness: the metrics backend answers a query, and the judge is not draining", s.handleReadyz()},
		{"GET", "/metrics", "the judge's Prometheus metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{})},
		{"GET", "/v1/judge", "judge a canary against its stable (Argo Rollouts' web provider): ?namespace=NS&canary=HASH&stable=HASH[&window=30m][&step=1m]", s.handleJudge()},
	}
}

// mux registers every route, a JSON 405 for other methods on each path and
// a JSON 404 for everything else.
func (s *server) mux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.method+" "+rt.path, rt.handler)
		allow := rt.method
		if allow == "GET" {
			allow = "GET, HEAD"
		}
		mux.Handle(rt.path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "", "method %s is not allowed on %s; use %s", r.Method, r.URL.Path, allow)
		}))
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "", "no endpoint %s %s; the judge serves GET /v1/judge, /healthz, /readyz and /metrics", r.Method, r.URL.Path)
	}))
	return mux
}
