package server

import (
	"strings"
	"testing"
)

// TestErrorSeriesExistBeforeAnyError: the server-error series of every
// inference endpoint (version "none", and each loaded version once
// SetServing names it) are exported at 0 before any request, so an outage
// never starts a brand-new series (telemetry.Metrics.InitErrorSeries says
// why); non-inference endpoints get none.
func TestErrorSeriesExistBeforeAnyError(t *testing.T) {
	ts := newTestServer(t, testOptions{})
	ts.metrics.SetServing([]string{"v1", "v2"}, map[string]float64{"v2": 100})
	_, _, body := ts.do(t, "GET", "/metrics", "")
	text := string(body)
	for _, endpoint := range []string{"/predict", "/predict/batch", "/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"} {
		for _, version := range []string{"none", "v1", "v2"} {
			for _, status := range []string{"500", "503"} {
				want := `inference_requests_total{endpoint="` + endpoint + `",status="` + status + `",version="` + version + `"} 0`
				if !strings.Contains(text, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
		}
	}
	if strings.Contains(text, `endpoint="/health",status="500"`) {
		t.Error("a non-inference endpoint got pre-created error series")
	}
}
