package server

import (
	"strings"
	"testing"
)

type oipErr struct {
	Error string `json:"error"`
}

func TestOIPHealthAndMetadata(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	status, _, body := ts.do(t, "GET", "/v2", "")
	meta := mustJSON[oipServerMetadata](t, body)
	if status != 200 || meta.Name != "ml-inference" || meta.Version == "" || meta.Extensions == nil {
		t.Errorf("server metadata: %d %s", status, body)
	}
	for _, p := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/sentiment-analyzer/ready", "/v2/models/sentiment-analyzer/versions/v1/ready"} {
		if status, _, body := ts.do(t, "GET", p, ""); status != 200 {
			t.Errorf("GET %s: %d %s", p, status, body)
		}
	}
	status, _, body = ts.do(t, "GET", "/v2/models/sentiment-analyzer", "")
	mm := mustJSON[oipModelMetadata](t, body)
	if status != 200 || mm.Name != "sentiment-analyzer" || strings.Join(mm.Versions, ",") != "v1,v2,v3" ||
		len(mm.Inputs) != 1 || mm.Inputs[0].Datatype != "BYTES" || len(mm.Outputs) != 2 || mm.Platform == "" {
		t.Errorf("model metadata: %d %s", status, body)
	}
	status, _, body = ts.do(t, "GET", "/v2/models/sentiment-analyzer/versions/v2", "")
	if mm := mustJSON[oipModelMetadata](t, body); status != 200 || strings.Join(mm.Versions, ",") != "v2" {
		t.Errorf("version metadata: %d %s", status, body)
	}
	for _, p := range []string{"/v2/models/nope", "/v2/models/sentiment-analyzer/versions/v9", "/v2/models/nope/ready"} {
		status, _, body := ts.do(t, "GET", p, "")
		if e := mustJSON[oipErr](t, body); status != 404 || e.Error == "" {
			t.Errorf("GET %s: %d %s, want 404 with an OIP error", p, status, body)
		}
	}
}

func TestOIPInfer(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	req := `{"id":"req-1","inputs":[{"name":"text","shape":[3],"datatype":"BYTES","data":["I love it","awful service","The box is blue"]}]}`
	status, h, body := ts.do(t, "POST", "/v2/models/sentiment-analyzer/versions/v1/infer", req)
	if status != 200 {
		t.Fatalf("infer: %d %s", status, body)
	}
	resp := mustJSON[struct {
		ModelName    string `json:"model_name"`
		ModelVersion string `json:"model_version"`
		ID           string `json:"id"`
		Outputs      []struct {
			Name     string  `json:"name"`
			Shape    []int64 `json:"shape"`
			Datatype string  `json:"datatype"`
			Data     []any   `json:"data"`
		} `json:"outputs"`
	}](t, body)
	if resp.ModelName != "sentiment-analyzer" || resp.ModelVersion != "v1" || resp.ID != "req-1" || h.Get("X-Model-Version") != "v1" || len(resp.Outputs) != 2 {
		t.Fatalf("infer response: %s", body)
	}
	label, conf := resp.Outputs[0], resp.Outputs[1]
	if label.Name != "label" || label.Datatype != "BYTES" || conf.Name != "confidence" || conf.Datatype != "FP32" ||
		len(label.Data) != 3 || len(conf.Data) != 3 || label.Shape[0] != 3 {
		t.Fatalf("outputs: %s", body)
	}
	if label.Data[0] != "positive" || label.Data[1] != "negative" || label.Data[2] != "neutral" || conf.Data[0] != 0.7 {
		t.Errorf("labels %v confidences %v", label.Data, conf.Data)
	}

	// Nested data with a [2,1] shape, only the label output requested, version
	// chosen by the router (pinned here by header).
	req = `{"inputs":[{"name":"text","shape":[2,1],"datatype":"BYTES","data":[["great"],["bad"]]}],"outputs":[{"name":"label"}]}`
	status, h, body = ts.do(t, "POST", "/v2/models/sentiment-analyzer/infer", req, "X-Model-Version", "v1")
	if status != 200 || h.Get("X-Model-Version") != "v1" || !strings.Contains(string(body), `"shape":[2,1]`) || strings.Contains(string(body), "confidence") {
		t.Errorf("nested infer: %d %s", status, body)
	}

	bad := []struct {
		name, path, body string
		status           int
	}{
		{"unknown model", "/v2/models/nope/infer", `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["x"]}]}`, 404},
		{"unknown version", "/v2/models/sentiment-analyzer/versions/v9/infer", `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["x"]}]}`, 404},
		{"no inputs", "/v2/models/sentiment-analyzer/infer", `{"inputs":[]}`, 400},
		{"wrong datatype", "/v2/models/sentiment-analyzer/infer", `{"inputs":[{"name":"text","shape":[1],"datatype":"FP32","data":[1.0]}]}`, 400},
		{"shape mismatch", "/v2/models/sentiment-analyzer/infer", `{"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","data":["x"]}]}`, 400},
		{"non-string data", "/v2/models/sentiment-analyzer/infer", `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":[7]}]}`, 400},
		{"unknown output", "/v2/models/sentiment-analyzer/infer", `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["x"]}],"outputs":[{"name":"logits"}]}`, 400},
		{"empty text", "/v2/models/sentiment-analyzer/infer", `{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":[""]}]}`, 422},
		{"too many", "/v2/models/sentiment-analyzer/infer", `{"inputs":[{"name":"text","shape":[21],"datatype":"BYTES","data":[` + strings.Repeat(`"x",`, 20) + `"x"]}]}`, 400},
		{"malformed", "/v2/models/sentiment-analyzer/infer", `{"inputs":`, 400},
	}
	for _, c := range bad {
		status, _, body := ts.do(t, "POST", c.path, c.body)
		e := mustJSON[oipErr](t, body)
		if status != c.status || e.Error == "" {
			t.Errorf("%s: %d %s, want %d with {\"error\": message}", c.name, status, body, c.status)
		}
	}
	if status, _, body := ts.do(t, "GET", "/v2/models/sentiment-analyzer/infer", ""); status != 405 || mustJSON[oipErr](t, body).Error == "" {
		t.Errorf("GET infer: %d %s", status, body)
	}
}
