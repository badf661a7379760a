package judge

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

var testNamespaces = []string{"ml-inference-dev", "ml-inference-prod"}

func servedTest(ns string) bool { return slices.Contains(testNamespaces, ns) }

func TestParseRequest(t *testing.T) {
	ok := "namespace=ml-inference-prod&canary=7c9d8b6f5&stable=58f4d9c7b"
	for _, c := range []struct {
		query string
		want  Request
	}{
		{ok, Request{Namespace: "ml-inference-prod", Canary: "7c9d8b6f5", Stable: "58f4d9c7b", Window: 30 * time.Minute, Step: time.Minute}},
		{ok + "&window=1h&step=30s", Request{Namespace: "ml-inference-prod", Canary: "7c9d8b6f5", Stable: "58f4d9c7b", Window: time.Hour, Step: 30 * time.Second}},
		{ok + "&window=1d&step=1m", Request{Namespace: "ml-inference-prod", Canary: "7c9d8b6f5", Stable: "58f4d9c7b", Window: 24 * time.Hour, Step: time.Minute}},
		{ok + "&window=90s&step=90s", Request{Namespace: "ml-inference-prod", Canary: "7c9d8b6f5", Stable: "58f4d9c7b", Window: 90 * time.Second, Step: 90 * time.Second}},
	} {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseRequest(q, servedTest)
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", c.query, got, err, c.want)
		}
	}
}

func TestParseRequestNamesTheParameter(t *testing.T) {
	base := url.Values{"namespace": {"ml-inference-prod"}, "canary": {"7c9d8b6f5"}, "stable": {"58f4d9c7b"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for key, vs := range base {
			q[key] = vs
		}
		if v == "" {
			delete(q, k)
		} else {
			q.Set(k, v)
		}
		return q
	}
	for _, c := range []struct {
		name  string
		query url.Values
		param string
		says  string
	}{
		{"missing namespace", with("namespace", ""), "namespace", "required"},
		{"missing canary", with("canary", ""), "canary", "required"},
		{"missing stable", with("stable", ""), "stable", "required"},
		{"namespace not a DNS label", with("namespace", "Prod_NS"), "namespace", "not the Kubernetes namespace"},
		{"namespace not served", with("namespace", "kube-system"), "namespace", "does not serve"},
		{"malformed hash", with("canary", `abc"}or{`), "canary", "rollouts-pod-template-hash"},
		{"hash with a regexp", with("stable", "a.*"), "stable", "rollouts-pod-template-hash"},
		{"hash too long", with("canary", strings.Repeat("a", 64)), "canary", "at most 63"},
		{"same hashes", with("stable", "7c9d8b6f5"), "stable", "also the canary's"},
		{"window not a duration", with("window", "thirty"), "window", "not a duration"},
		{"window fractional", with("window", "1.5h"), "window", "not a duration"},
		{"window zero", with("window", "0"), "window", "longer than 0"},
		{"window negative", with("window", "-5m"), "window", "not a duration"},
		{"window too long", with("window", "2d"), "window", "longer than the 1d"},
		{"step not a duration", with("step", "1 minute"), "step", "not a duration"},
		{"step too short", with("step", "500ms"), "step", "shorter than the 1s"},
		{"step larger than window", with("step", "1h"), "step", "longer than the window"},
		{"too many looks", url.Values{"namespace": {"ml-inference-prod"}, "canary": {"a"}, "stable": {"b"}, "window": {"1d"}, "step": {"30s"}}, "step", "more than the 1440"},
		{"unknown parameter", with("windows", "30m"), "windows", "unknown parameter"},
		{"repeated parameter", url.Values{"namespace": {"ml-inference-prod", "ml-inference-dev"}, "canary": {"a"}, "stable": {"b"}}, "namespace", "given 2 times"},
	} {
		_, err := ParseRequest(c.query, servedTest)
		var pe *ParamError
		if !errors.As(err, &pe) {
			t.Errorf("%s: err %v, want a ParamError", c.name, err)
			continue
		}
		if pe.Param != c.param || !strings.Contains(pe.Message, c.says) {
			t.Errorf("%s: %s: %q; want parameter %s and a message with %q", c.name, pe.Param, pe.Message, c.param, c.says)
		}
	}
}

// FuzzParseRequest: any query string either parses into a request within
// the limits or fails with a ParamError that names one of the parameters
// (or the unknown one it found); it never panics.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		"namespace=ml-inference-prod&canary=7c9d8b6f5&stable=58f4d9c7b",
		"namespace=ml-inference-prod&canary=7c9d8b6f5&stable=58f4d9c7b&window=1h&step=30s",
		"namespace=ml-inference-dev&canary=a&stable=b&window=1d&step=1m",
		"namespace=ml-inference-prod&canary=a&stable=b&window=9999999999999999999y",
		"namespace=ml-inference-prod&canary=a&stable=b&step=0",
		"namespace=x&canary=%ff&stable=%00",
		"window=1h30m&step=1m1s1ms",
		"canary=a&canary=b",
		"",
		"&&&===",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return // the handler answers these with a 400 before ParseRequest
		}
		r, err := ParseRequest(q, servedTest)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("%q: %v is not a ParamError", raw, err)
			}
			if _, given := q[pe.Param]; !given && !slices.Contains(Params, pe.Param) {
				t.Fatalf("%q: the error names %q, which is neither given nor a parameter", raw, pe.Param)
			}
			if pe.Message == "" {
				t.Fatalf("%q: empty message", raw)
			}
			return
		}
		switch {
		case !servedTest(r.Namespace):
			t.Fatalf("%q: namespace %q is not served", raw, r.Namespace)
		case !dnsLabel.MatchString(r.Canary) || !dnsLabel.MatchString(r.Stable) || r.Canary == r.Stable:
			t.Fatalf("%q: hashes %q, %q", raw, r.Canary, r.Stable)
		case r.Step < MinStep || r.Step > r.Window || r.Window > MaxWindow || r.Window/r.Step > MaxLooks:
			t.Fatalf("%q: window %s, step %s out of bounds", raw, r.Window, r.Step)
		}
		// The query built from it is what the backend gets: no quote,
		// brace or regexp metacharacter can come from the request.
		for _, s := range []string{r.Namespace, r.Canary, r.Stable} {
			if strings.ContainsAny(s, "\"'`{}()[]|.*+?^$\\ ") {
				t.Fatalf("%q: %q would need escaping in a query", raw, s)
			}
		}
		g := GridFor(time.Unix(1_700_000_000, 0), r.Window, r.Step)
		if g.MaxLooks() != int(r.Window/r.Step) || g.MaxLooks() < 1 {
			t.Fatalf("%q: grid of %d looks for window %s step %s", raw, g.MaxLooks(), r.Window, r.Step)
		}
	})
}
