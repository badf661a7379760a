package slolive

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// exported is one series in VictoriaMetrics' JSON line export/import format.
type exported struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// importHistory gives every live series matching match a healthy past: for
// each, it imports samples from span before that series' first scraped
// sample up to one step before it, under the series' own labels, counting at
// rate(labels) requests a second (0 for the server-error series, which
// ml-inference exports at 0 from its start). The live counter (which starts near 0) then
// reads as a counter reset, which rate() handles, so every rule window holds
// what it would after hours of healthy traffic: the outage must burn
// through a full hour of successes before the 1h SLI crosses the page
// threshold, as in production. Without it every window would hold only the
// minutes since the test started.
func importHistory(ctx context.Context, vm, match string, span, step time.Duration, rate func(labels map[string]string) float64) (int, error) {
	series, err := export(ctx, vm, match)
	if err != nil {
		return 0, err
	}
	if len(series) == 0 {
		return 0, fmt.Errorf("no live series match %s yet", match)
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	n := 0
	for _, s := range series {
		if len(s.Timestamps) == 0 {
			continue
		}
		first := time.UnixMilli(s.Timestamps[0])
		h := exported{Metric: s.Metric}
		v, perSecond := 0.0, rate(s.Metric)
		for at := first.Add(-span); at.Before(first); at = at.Add(step) {
			h.Timestamps = append(h.Timestamps, at.UnixMilli())
			h.Values = append(h.Values, v)
			v += perSecond * step.Seconds()
		}
		n += len(h.Values)
		if err := enc.Encode(h); err != nil {
			return 0, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, vm+"/api/v1/import", &body)
	if err != nil {
		return 0, err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("POST /api/v1/import: %d %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return n, nil
}

// export reads the raw samples of the series matching match.
func export(ctx context.Context, vm, match string) ([]exported, error) {
	u := vm + "/api/v1/export?" + url.Values{"match[]": {match}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, bytes.TrimSpace(b))
	}
	var out []exported
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e exported
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("GET %s: %v", u, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
