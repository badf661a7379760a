package server

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// FuzzRequests throws arbitrary bodies at every endpoint that decodes one.
// Whatever arrives, the answer is a JSON body; client mistakes are 4xx and
// nothing is ever a 5xx. The seed corpus is in testdata/fuzz/FuzzRequests.
func FuzzRequests(f *testing.F) {
	paths := []string{"/predict", "/predict/batch", "/v2/models/sentiment-analyzer/infer"}
	f.Add(uint8(0), []byte(`{"text":"great phone"}`))
	f.Add(uint8(0), []byte(`{"text":"`+"\xff\xfe"+`"}`))
	f.Add(uint8(1), []byte(`{"texts":["a","b",""]}`))
	f.Add(uint8(1), []byte(`{"texts":[null, 1, {}]}`))
	f.Add(uint8(2), []byte(`{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["x"]}]}`))
	f.Add(uint8(2), []byte(`{"inputs":[{"name":"text","shape":[-1],"datatype":"BYTES","data":[[["x"]]]}]}`))
	f.Add(uint8(2), []byte(`{"inputs":[{"name":"text","shape":[9223372036854775807,2],"datatype":"BYTES","data":[]}]}`))
	ts := newTestServer(f, testOptions{})
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		ts.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: status %d %s", path, body, rec.Code, rec.Body)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("POST %s %q: body is not JSON: %q", path, body, rec.Body)
		}
		if rec.Code >= 400 {
			if _, ok := v["error"]; !ok {
				t.Fatalf("POST %s %q: %d without an error field: %s", path, body, rec.Code, rec.Body)
			}
			return
		}
		if path == "/predict" {
			if s := v["sentiment"]; s != "positive" && s != "negative" && s != "neutral" {
				t.Fatalf("sentiment %v", s)
			}
			if c, _ := v["confidence"].(float64); c < 0 || c > 1 {
				t.Fatalf("confidence %v", c)
			}
		}
	})
}
