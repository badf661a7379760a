package judge

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Request is one GET /v1/judge, validated.
type Request struct {
	Namespace string
	// Canary and Stable are rollouts-pod-template-hash values (the
	// AnalysisTemplate passes them from podTemplateHashValue Latest and
	// Stable).
	Canary, Stable string
	// Window is how far back the analysis reaches at most; Step the time
	// between looks.
	Window, Step time.Duration
}

// Query parameter defaults and limits.
const (
	DefaultWindow = 30 * time.Minute
	DefaultStep   = time.Minute
	// MaxWindow bounds the range read from the backend.
	MaxWindow = 24 * time.Hour
	// MinStep is below any scrape interval worth having.
	MinStep = time.Second
	// MaxLooks bounds window/step: the points per series read, and the
	// Bonferroni factor of the latency test.
	MaxLooks = 1440
)

// Params are the query parameters GET /v1/judge accepts.
var Params = []string{"namespace", "canary", "stable", "window", "step"}

// ParamError is a query parameter the client got wrong: a 400 naming it.
type ParamError struct {
	Param   string
	Message string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Message }

func paramErr(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// dnsLabel is an RFC 1123 label: a Kubernetes namespace, and the shape of
// the hashes Argo Rollouts writes (lowercase letters and digits). Neither
// can carry a quote or a regular expression's metacharacter into the
// backend's query.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ParseRequest validates the query. served says whether the judge serves a
// namespace (the metrics' namespace label stays bounded by it).
func ParseRequest(q url.Values, served func(namespace string) bool) (Request, error) {
	for k, vs := range q {
		if !slices.Contains(Params, k) {
			return Request{}, paramErr(k, "unknown parameter (the parameters are %s)", strings.Join(Params, ", "))
		}
		if len(vs) > 1 {
			return Request{}, paramErr(k, "given %d times; give it once", len(vs))
		}
	}
	r := Request{Window: DefaultWindow, Step: DefaultStep}
	for _, p := range []struct {
		name, what string
		into       *string
	}{
		{"namespace", "the Kubernetes namespace of the rollout", &r.Namespace},
		{"canary", "the canary's rollouts-pod-template-hash", &r.Canary},
		{"stable", "the stable's rollouts-pod-template-hash", &r.Stable},
	} {
		v := q.Get(p.name)
		if v == "" {
			return Request{}, paramErr(p.name, "required: %s", p.what)
		}
		if !dnsLabel.MatchString(v) {
			return Request{}, paramErr(p.name, "%q is not %s: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", truncate(v), p.what)
		}
		*p.into = v
	}
	if !served(r.Namespace) {
		return Request{}, paramErr("namespace", "the judge does not serve namespace %q (see its --namespaces)", r.Namespace)
	}
	if r.Canary == r.Stable {
		return Request{}, paramErr("stable", "%q is also the canary's hash: a canary is judged against a different stable", r.Stable)
	}
	for _, p := range []struct {
		name string
		into *time.Duration
	}{{"window", &r.Window}, {"step", &r.Step}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		d, err := model.ParseDuration(v)
		if err != nil {
			return Request{}, paramErr(p.name, "%q is not a duration (e.g. 30m, 1h, 90s)", truncate(v))
		}
		if d <= 0 {
			return Request{}, paramErr(p.name, "%q must be longer than 0", v)
		}
		*p.into = time.Duration(d)
	}
	switch {
	case r.Window > MaxWindow:
		return Request{}, paramErr("window", "%s is longer than the %s allowed", model.Duration(r.Window), model.Duration(MaxWindow))
	case r.Step < MinStep:
		return Request{}, paramErr("step", "%s is shorter than the %s allowed", model.Duration(r.Step), model.Duration(MinStep))
	case r.Step > r.Window:
		return Request{}, paramErr("step", "%s is longer than the window %s: there would be no look", model.Duration(r.Step), model.Duration(r.Window))
	case r.Window/r.Step > MaxLooks:
		return Request{}, paramErr("step", "%s over a window of %s makes %d looks, more than the %d allowed: take a longer step", model.Duration(r.Step), model.Duration(r.Window), r.Window/r.Step, MaxLooks)
	}
	return r, nil
}

// truncate keeps error messages short when a client sends a long value.
func truncate(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
