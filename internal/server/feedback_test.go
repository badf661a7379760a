package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ml-platform/platform/internal/feedback"
)

var testFeedbackKey = []byte("a-test-key-of-more-than-thirty-two-bytes")

func feedbackKeys(t testing.TB, secrets ...[]byte) *feedback.Keys {
	t.Helper()
	if len(secrets) == 0 {
		secrets = [][]byte{testFeedbackKey}
	}
	k, err := feedback.NewKeys(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// clock is a settable time for a test server.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }

func (ts *testServer) predictToken(t *testing.T, headers ...string) (string, map[string]any) {
	t.Helper()
	status, _, body := ts.do(t, "POST", "/predict", `{"text":"I love it"}`, headers...)
	if status != 200 {
		t.Fatalf("predict: %d %s", status, body)
	}
	got := mustJSON[map[string]any](t, body)
	tok, _ := got["feedback_token"].(string)
	if tok == "" {
		t.Fatalf("prediction has no feedback_token: %s", body)
	}
	return tok, got
}

func (ts *testServer) sendFeedback(t *testing.T, token, label string) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"feedback_token": token, "label": label})
	status, _, resp := ts.do(t, "POST", "/feedback", string(body))
	return status, resp
}

func (ts *testServer) feedbackCount(version, outcome, routing string) float64 {
	return testutil.ToFloat64(ts.metrics.Feedback.WithLabelValues(version, outcome, routing))
}

// TestFeedbackTokensOnEveryPrediction: /predict, every item of
// /predict/batch and every element of an OIP infer carry a token that says
// which version predicted what, and whether the split or the client chose
// the version.
func TestFeedbackTokensOnEveryPrediction(t *testing.T) {
	keys := feedbackKeys(t)
	ts := newTestServer(t, testOptions{feedbackKeys: keys, traffic: "v1=50,v2=50"})
	verify := func(tok string) feedback.Claims {
		t.Helper()
		c, _, err := keys.Verify(tok, time.Now(), time.Hour, time.Minute)
		if err != nil {
			t.Fatalf("token %q: %v", tok, err)
		}
		return c
	}

	tok, got := ts.predictToken(t, "X-Request-ID", "req-1", "X-User-ID", "alice")
	c := verify(tok)
	if c.RequestID != "req-1" || c.Index != 0 || c.Version != got["model_version"] || c.Label != got["sentiment"] || c.Pinned {
		t.Errorf("/predict token claims %+v for answer %v", c, got)
	}
	tok, _ = ts.predictToken(t, "X-Model-Version", "v1")
	if c := verify(tok); !c.Pinned || c.Version != "v1" {
		t.Errorf("pinned /predict token claims %+v, want pinned v1", c)
	}

	status, _, body := ts.do(t, "POST", "/predict/batch", `{"texts":["I love it","awful service","The box is blue"]}`, "X-Request-ID", "req-2")
	if status != 200 {
		t.Fatalf("batch: %d %s", status, body)
	}
	batch := mustJSON[batchResponse](t, body)
	seen := map[string]bool{}
	for i, p := range batch.Predictions {
		c := verify(p.FeedbackToken)
		if c.RequestID != "req-2" || c.Index != i || c.Label != p.Sentiment || c.Version != batch.ModelVersion || seen[p.FeedbackToken] {
			t.Errorf("batch item %d: token claims %+v for %+v", i, c, p)
		}
		seen[p.FeedbackToken] = true
	}

	status, _, body = ts.do(t, "POST", "/v2/models/sentiment-analyzer/versions/v2/infer",
		`{"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","data":["I love it","awful"]}]}`)
	if status != 200 {
		t.Fatalf("OIP infer: %d %s", status, body)
	}
	var oip struct {
		Parameters struct {
			FeedbackTokens string `json:"feedback_tokens"`
		} `json:"parameters"`
		Outputs []struct {
			Name string `json:"name"`
			Data []any  `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(body, &oip); err != nil {
		t.Fatal(err)
	}
	toks := strings.Split(oip.Parameters.FeedbackTokens, ",")
	if len(toks) != 2 || oip.Outputs[0].Name != "label" {
		t.Fatalf("OIP response: %s", body)
	}
	for i, tok := range toks {
		if c := verify(tok); c.Index != i || c.Label != oip.Outputs[0].Data[i] || c.Version != "v2" || !c.Pinned {
			t.Errorf("OIP element %d: claims %+v", i, c)
		}
	}
}

// TestFeedbackCounts: a verdict equal to the predicted label is "correct",
// another is "incorrect", for the version and routing the token names.
func TestFeedbackCounts(t *testing.T) {
	ts := newTestServer(t, testOptions{feedbackKeys: feedbackKeys(t), traffic: "v1=50,v2=50"})
	tok, got := ts.predictToken(t, "X-User-ID", "bob")
	version, predicted := got["model_version"].(string), got["sentiment"].(string)
	status, body := ts.sendFeedback(t, tok, predicted)
	if status != 200 {
		t.Fatalf("feedback: %d %s", status, body)
	}
	resp := mustJSON[feedbackResponse](t, body)
	if resp.Status != "recorded" || resp.Outcome != "correct" || resp.ModelVersion != version || resp.Routing != "split" || resp.Predicted != predicted {
		t.Errorf("response %+v", resp)
	}
	tok2, _ := ts.predictToken(t, "X-Model-Version", "v1")
	if status, body := ts.sendFeedback(t, tok2, "negative"); status != 200 {
		t.Fatalf("feedback: %d %s", status, body)
	}
	if n := ts.feedbackCount(version, "correct", "split"); n != 1 {
		t.Errorf("correct split feedback for %s: %v, want 1", version, n)
	}
	if n := ts.feedbackCount("v1", "incorrect", "pinned"); n != 1 {
		t.Errorf("incorrect pinned feedback for v1: %v, want 1", n)
	}
}

// TestFeedbackReplay is what the docs promise of a replayed token: counted
// once per replica within its lifetime. Two replicas share the key; the
// prediction is made on A, its feedback lands on B (counted), is replayed to
// B (409, not counted) and to A (counted: A has not seen it).
func TestFeedbackReplay(t *testing.T) {
	keys := feedbackKeys(t)
	a := newTestServer(t, testOptions{feedbackKeys: keys})
	b := newTestServer(t, testOptions{feedbackKeys: keys})
	tok, got := a.predictToken(t)
	label := got["sentiment"].(string)
	v := got["model_version"].(string)
	for i, step := range []struct {
		on     *testServer
		status int
	}{{b, 200}, {b, 409}, {b, 409}, {a, 200}, {a, 409}} {
		status, body := step.on.sendFeedback(t, tok, label)
		if status != step.status {
			t.Errorf("step %d: %d %s, want %d", i, status, body, step.status)
		}
		if status == 409 && !strings.Contains(string(body), `"code":"duplicate_feedback"`) {
			t.Errorf("step %d: replay body %s", i, body)
		}
	}
	if na, nb := a.feedbackCount(v, "correct", "split"), b.feedbackCount(v, "correct", "split"); na != 1 || nb != 1 {
		t.Errorf("counted %v on A and %v on B, want once on each", na, nb)
	}
	if n := testutil.ToFloat64(b.metrics.FeedbackRefused.WithLabelValues("replay")); n != 2 {
		t.Errorf("replays refused on B: %v, want 2", n)
	}
}

// TestFeedbackErrors: every bad feedback is a 4xx JSON error with its own
// code, and is not counted.
func TestFeedbackErrors(t *testing.T) {
	clk := newClock(time.Now())
	ts := newTestServer(t, testOptions{feedbackKeys: feedbackKeys(t), now: clk.now})
	tok, _ := ts.predictToken(t)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	raw[14] ^= 1 // inside the version field: a different version, same MAC
	tampered := base64.RawURLEncoding.EncodeToString(raw)
	foreign, _ := feedbackKeys(t, []byte("another-key-of-more-than-thirty-two-bytes")).Token(feedback.Claims{Version: "v2", Label: "positive", RequestID: "x", IssuedAt: clk.now()})
	future, _ := feedbackKeys(t).Token(feedback.Claims{Version: "v2", Label: "positive", RequestID: "x", IssuedAt: clk.now().Add(time.Hour)})

	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"tampered", fmt.Sprintf(`{"feedback_token":%q,"label":"positive"}`, tampered), 403, "invalid_signature"},
		{"another key", fmt.Sprintf(`{"feedback_token":%q,"label":"positive"}`, foreign), 403, "invalid_signature"},
		{"not a token", `{"feedback_token":"hello","label":"positive"}`, 400, "invalid_token"},
		{"not base64", `{"feedback_token":"***","label":"positive"}`, 400, "invalid_token"},
		{"huge", fmt.Sprintf(`{"feedback_token":%q,"label":"positive"}`, strings.Repeat("A", 4000)), 400, "invalid_token"},
		{"from the future", fmt.Sprintf(`{"feedback_token":%q,"label":"positive"}`, future), 400, "token_not_yet_valid"},
		{"unknown label", fmt.Sprintf(`{"feedback_token":%q,"label":"great"}`, tok), 422, "invalid_label"},
		{"no label", fmt.Sprintf(`{"feedback_token":%q}`, tok), 422, "missing_field"},
		{"no token", `{"label":"positive"}`, 422, "missing_field"},
		{"empty token", `{"feedback_token":" ","label":"positive"}`, 422, "empty_token"},
		{"token not a string", `{"feedback_token":7,"label":"positive"}`, 422, "invalid_field"},
		{"not JSON", `feedback`, 422, "invalid_json"},
	}
	for _, c := range cases {
		status, _, body := ts.do(t, "POST", "/feedback", c.body)
		e := mustJSON[errBody](t, body)
		if status != c.status || e.Error.Code != c.code || e.Error.Message == "" {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, body, c.status, c.code)
		}
	}
	// Expired: the same valid token, an hour and a second later.
	clk.set(clk.now().Add(time.Hour + time.Second))
	status, body := ts.sendFeedback(t, tok, "positive")
	if e := mustJSON[errBody](t, body); status != 410 || e.Error.Code != "token_expired" {
		t.Errorf("expired: %d %s", status, body)
	}
	for _, v := range []string{"v1", "v2"} {
		for _, o := range []string{"correct", "incorrect"} {
			if n := ts.feedbackCount(v, o, "split"); n != 0 {
				t.Errorf("%s %s counted %v after refusals only", v, o, n)
			}
		}
	}
	for reason, want := range map[string]float64{"bad_signature": 2, "invalid_token": 3, "not_yet_valid": 1, "expired": 1} {
		if n := testutil.ToFloat64(ts.metrics.FeedbackRefused.WithLabelValues(reason)); n != want {
			t.Errorf("refused for %s: %v, want %v", reason, n, want)
		}
	}
	// GET is a 405 like every other route.
	if status, _, body := ts.do(t, "GET", "/feedback", ""); status != 405 {
		t.Errorf("GET /feedback: %d %s", status, body)
	}
}

// TestFeedbackDisabled: without a key, predictions carry no token and
// /feedback is a 404 that says why.
func TestFeedbackDisabled(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	status, _, body := ts.do(t, "POST", "/predict", `{"text":"I love it"}`)
	if status != 200 || strings.Contains(string(body), "feedback_token") {
		t.Errorf("predict without a key: %d %s", status, body)
	}
	status, _, body = ts.do(t, "POST", "/feedback", `{"feedback_token":"x","label":"positive"}`)
	if e := mustJSON[errBody](t, body); status != 404 || e.Error.Code != "feedback_disabled" || !strings.Contains(e.Error.Message, "--feedback-key-file") {
		t.Errorf("feedback without a key: %d %s", status, body)
	}
}

// TestFeedbackStoreFull: past its limit the replay store refuses with 503
// and Retry-After, and counts nothing.
func TestFeedbackStoreFull(t *testing.T) {
	ts := newTestServer(t, testOptions{feedbackKeys: feedbackKeys(t), feedback: FeedbackConfig{TokenTTL: time.Hour, ClockSkew: time.Minute, ReplayEntries: 2}})
	for i := range 3 {
		tok, got := ts.predictToken(t)
		status, _, body := ts.do(t, "POST", "/feedback", fmt.Sprintf(`{"feedback_token":%q,"label":%q}`, tok, got["sentiment"]))
		want := 200
		if i == 2 {
			want = 503
		}
		if status != want {
			t.Errorf("feedback %d: %d %s, want %d", i, status, body, want)
		}
	}
}
