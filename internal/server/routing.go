package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/ml-platform/platform/internal/registry"
	"github.com/ml-platform/platform/internal/router"
)

// routed is what routing decided for one request: the model set it read
// (once: registry.Live promises a request one set from start to end) and the
// version that serves it.
type routed struct {
	set     *registry.Set
	version *registry.Loaded
	// pinned: the client chose the version (X-Model-Version or an OIP
	// version URL); false: the traffic split did. Feedback tokens carry it,
	// so experiments count only the split's assignments.
	pinned bool
}

// routedHandler is an endpoint that serves a model version chosen for it.
type routedHandler func(w http.ResponseWriter, r *http.Request, rt routed)

// versionHeader carries the serving version on every routed response. The
// observing middleware reads it back for the metrics and the access log, so
// the version a client is told and the version that is counted are the same
// by construction.
const versionHeader = "X-Model-Version"

// route chooses the model version for a request once, before the endpoint
// runs, and hands the decision to h. The choice is, in order: the OIP URL's
// {version} (which must belong to the URL's {name}), the X-Model-Version
// header, else the weighted split keyed by the sticky header. A request that
// cannot be routed gets a 404 (unknown model or version) or a 503 (nothing
// loaded) in format, and h does not run.
func (s *server) route(format errorFormat, h routedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := s.models.Current()
		pinned := ""
		if format == formatOIP {
			v, e := oipVersion(set, r.PathValue("name"), r.PathValue("version"))
			if e != nil {
				writeError(w, format, e)
				return
			}
			pinned = v
		}
		if pinned == "" {
			pinned = r.Header.Get(versionHeader)
		}
		var key string
		if s.cfg.StickyHeader != "" {
			key = r.Header.Get(s.cfg.StickyHeader)
		}
		v, err := s.router.Pick(set, pinned, key)
		if err != nil {
			if uv, ok := err.(*router.UnknownVersionError); ok && uv.Version != "" {
				writeError(w, format, errorf(http.StatusNotFound, "unknown_model_version", "%s", uv.Error()))
				return
			}
			writeError(w, format, errorf(http.StatusServiceUnavailable, "no_model", "no model version is loaded"))
			return
		}
		w.Header().Set(versionHeader, v.Meta.Version)
		h(w, r, routed{set: set, version: v, pinned: pinned != ""})
	})
}

// oipVersion checks an OIP URL's model name, and its version if it names
// one, against set; it returns the version to pin ("" when the URL names
// none).
func oipVersion(set *registry.Set, name, version string) (string, *apiError) {
	versions := versionsNamed(set, name)
	if len(versions) == 0 {
		return "", errorf(http.StatusNotFound, "model_not_found", "model %q is not loaded; available models: %s", name, strings.Join(modelNames(set), ", "))
	}
	if version != "" && !slices.Contains(versions, version) {
		return "", errorf(http.StatusNotFound, "unknown_model_version", "model %q has no loaded version %q; available versions: %s", name, version, strings.Join(versions, ", "))
	}
	return version, nil
}

// versionsNamed lists the loaded versions of the model called name.
func versionsNamed(set *registry.Set, name string) []string {
	var out []string
	for _, v := range set.Versions() {
		if l, _ := set.Get(v); l.Meta.Name == name {
			out = append(out, v)
		}
	}
	return out
}

func modelNames(set *registry.Set) []string {
	var out []string
	for _, v := range set.Versions() {
		l, _ := set.Get(v)
		if !slices.Contains(out, l.Meta.Name) {
			out = append(out, l.Meta.Name)
		}
	}
	return out
}
