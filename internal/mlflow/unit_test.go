package mlflow

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadTrackingURIs(t *testing.T) {
	for _, uri := range []string{"", "localhost:5000", "ftp://h/", "http://", "http://u:p@h:5000", "http://h:5000/?x=1", "mlflow-artifacts:/1"} {
		if _, err := New(uri); err == nil {
			t.Errorf("New(%q) accepted it", uri)
		}
	}
	c, err := New("http://127.0.0.1:5000/mlflow/")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.TrackingURI(); got != "http://127.0.0.1:5000/mlflow" {
		t.Errorf("TrackingURI() = %q", got)
	}
}

// The mapping of mlflow-artifacts URIs onto the proxy's endpoint
// (mlflow/store/artifact/mlflow_artifacts_repo.py resolve_uri), with a path
// prefix on the tracking URI and a name that needs escaping.
func TestArtifactURL(t *testing.T) {
	c, err := New("http://127.0.0.1:5000/prefix")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ uri, rel, want string }{
		{"mlflow-artifacts:/1/abc/artifacts", "model/weights.bin", "http://127.0.0.1:5000/prefix/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/weights.bin"},
		{"mlflow-artifacts:///1/abc/artifacts/", "model.json", "http://127.0.0.1:5000/prefix/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model.json"},
		{"mlflow-artifacts:/1/abc/artifacts/model", "a b?#%.txt", "http://127.0.0.1:5000/prefix/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/a%20b%3F%23%25.txt"},
	} {
		u, err := c.ArtifactURL(tc.uri, tc.rel)
		if err != nil {
			t.Errorf("ArtifactURL(%q, %q): %v", tc.uri, tc.rel, err)
			continue
		}
		if u.String() != tc.want {
			t.Errorf("ArtifactURL(%q, %q) = %s, want %s", tc.uri, tc.rel, u, tc.want)
		}
	}
	for _, tc := range []struct{ uri, rel string }{
		{"s3://bucket/1/abc/artifacts", "x"},
		{"file:///tmp/mlruns/1/abc/artifacts", "x"},
		{"mlflow-artifacts://evil.example:5000/1/abc/artifacts", "x"},
		{"mlflow-artifacts:1/abc", "x"},
		{"mlflow-artifacts:/1/../../etc", "passwd"},
		{"mlflow-artifacts:/1/abc/artifacts", "../../../etc/passwd"},
		{"mlflow-artifacts:/1/abc/artifacts", "/etc/passwd"},
		{"mlflow-artifacts:/1/abc/artifacts", "a//b"},
		{"mlflow-artifacts:/1/abc/artifacts", `a\..\b`},
		{"mlflow-artifacts:/1/abc/artifacts", ""},
	} {
		if u, err := c.ArtifactURL(tc.uri, tc.rel); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ArtifactURL(%q, %q) = %v, %v; want ErrInvalidArgument", tc.uri, tc.rel, u, err)
		}
	}
}

func TestKeyValuesJSON(t *testing.T) {
	data, err := json.Marshal(KeyValues{"b": "2", "a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"key":"a","value":"1"},{"key":"b","value":"2"}]`; string(data) != want {
		t.Errorf("marshal = %s, want %s", data, want)
	}
	var kv KeyValues
	if err := json.Unmarshal([]byte(`[{"key":"a","value":"1"},{"key":"a","value":"2"}]`), &kv); err == nil {
		t.Error("a key given twice was accepted")
	}
}

func TestErrorKinds(t *testing.T) {
	notFound := &APIError{StatusCode: 404, Code: "RESOURCE_DOES_NOT_EXIST"}
	if !errors.Is(notFound, ErrNotFound) || errors.Is(notFound, ErrInvalidArgument) || IsRetryable(notFound) {
		t.Error("RESOURCE_DOES_NOT_EXIST: want ErrNotFound only, not retryable")
	}
	// A 404 that is not MLflow's (an HTML page for an unknown path) is not a
	// missing resource.
	if errors.Is(&APIError{StatusCode: 404, Message: "<!doctype html>"}, ErrNotFound) {
		t.Error("a 404 without RESOURCE_DOES_NOT_EXIST matched ErrNotFound")
	}
	for _, code := range []int{408, 429, 500, 502, 503, 504} {
		if !IsRetryable(&APIError{StatusCode: code}) {
			t.Errorf("status %d: want retryable", code)
		}
	}
	if IsRetryable(&APIError{StatusCode: 400, Code: "INVALID_PARAMETER_VALUE"}) {
		t.Error("400 INVALID_PARAMETER_VALUE: want not retryable")
	}
}

// A delivery signed by MLflow 3.17.2's own code
// (mlflow.webhooks.delivery._generate_hmac_signature("s3cret-for-tests",
// id, timestamp, body)), checked here with its variations.
func TestVerifyWebhook(t *testing.T) {
	const (
		secret = "s3cret-for-tests"
		id     = "d6b1608f-c602-43c5-acb8-b0453a7d35ad"
		ts     = "1796113833"
		sig    = "v1,JvN5OyaOckagutJlKOsLfuCrbASi07QE0hfvXVXHSAg="
		body   = `{"entity": "model_version_alias", "action": "created", "timestamp": "2026-12-01T08:30:33.188008+00:00", "data": {"name": "sentiment", "alias": "production", "version": "2"}}`
	)
	sent := time.Unix(1796113833, 0)
	header := func(mod func(http.Header)) http.Header {
		h := http.Header{}
		h.Set(HeaderWebhookDeliveryID, id)
		h.Set(HeaderWebhookTimestamp, ts)
		h.Set(HeaderWebhookSignature, sig)
		if mod != nil {
			mod(h)
		}
		return h
	}
	if err := VerifyWebhook(secret, header(nil), []byte(body), sent.Add(3*time.Second), 5*time.Minute); err != nil {
		t.Fatalf("MLflow's own signature: %v", err)
	}
	// One valid signature among several (secret rotation) is enough.
	rotated := header(func(h http.Header) { h.Set(HeaderWebhookSignature, "v1,AAAA v2,xyz "+sig) })
	if err := VerifyWebhook(secret, rotated, []byte(body), sent, time.Minute); err != nil {
		t.Errorf("a valid signature among others: %v", err)
	}
	for name, tc := range map[string]struct {
		secret string
		h      http.Header
		body   string
		now    time.Time
	}{
		"wrong secret":      {"other", header(nil), body, sent},
		"no secret":         {"", header(nil), body, sent},
		"tampered body":     {secret, header(nil), strings.Replace(body, `"2"`, `"3"`, 1), sent},
		"other delivery id": {secret, header(func(h http.Header) { h.Set(HeaderWebhookDeliveryID, "x") }), body, sent},
		"other timestamp":   {secret, header(func(h http.Header) { h.Set(HeaderWebhookTimestamp, "1796113834") }), body, sent},
		"replayed later":    {secret, header(nil), body, sent.Add(6 * time.Minute)},
		"from the future":   {secret, header(nil), body, sent.Add(-6 * time.Minute)},
		"no signature":      {secret, header(func(h http.Header) { h.Del(HeaderWebhookSignature) }), body, sent},
		"no timestamp":      {secret, header(func(h http.Header) { h.Del(HeaderWebhookTimestamp) }), body, sent},
		"bad timestamp":     {secret, header(func(h http.Header) { h.Set(HeaderWebhookTimestamp, "soon") }), body, sent},
		"unknown version":   {secret, header(func(h http.Header) { h.Set(HeaderWebhookSignature, "v2,"+sig[3:]) }), body, sent},
	} {
		if err := VerifyWebhook(tc.secret, tc.h, []byte(tc.body), tc.now, 5*time.Minute); !errors.Is(err, ErrWebhookUnverified) {
			t.Errorf("%s: got %v, want ErrWebhookUnverified", name, err)
		}
	}
}
