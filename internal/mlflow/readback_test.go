package mlflow_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ml-platform/platform/internal/mlflowtest"
)

// testReadback runs MLflow's own Python client (testdata/readback.py) on
// what the Go client wrote and compares every field, including the sha256
// of an artifact it downloads.
func testReadback(ctx context.Context, t *testing.T, srv *mlflowtest.Server, w *written) {
	dest := t.TempDir()
	cmd := exec.CommandContext(ctx, mlflowtest.Python(t), "testdata/readback.py", srv.URL, w.model, "weights.bin", dest)
	cmd.Env = append(os.Environ(), "MLFLOW_DISABLE_TELEMETRY=true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	began := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("readback.py: %v\n%s", err, stderr.String())
	}
	t.Logf("figures: readback.py (MLflow's Python client) took %s", time.Since(began).Round(time.Millisecond))

	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("readback.py printed no JSON (%v):\n%s", err, out)
	}
	if v := got["mlflow_version"]; v != "3.17.2" {
		t.Errorf("the read-back ran MLflow %v, want the pinned 3.17.2", v)
	}
	delete(got, "mlflow_version")
	// The downloaded file's digest, in place of where it was put.
	art, _ := got["artifact"].(map[string]any)
	local, _ := art["local_path"].(string)
	if !strings.HasPrefix(local, dest) {
		t.Fatalf("readback.py put the artifact at %q, not below %s", local, dest)
	}
	data, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	art["sha256"] = hex.EncodeToString(sum[:])
	delete(art, "local_path")

	want := expectedReadback(t, w)
	if diffs := diffJSON("", want, got); len(diffs) > 0 {
		t.Errorf("MLflow's Python client reads back %d fields that differ from what the Go client wrote:\n%s\nread back:\n%s", len(diffs), strings.Join(diffs, "\n"), out)
	}

	// Planted: one tag changed on the Go side must be the one difference
	// reported.
	planted := expectedReadback(t, w)
	planted["versions"].([]any)[1].(map[string]any)["tags"].(map[string]any)["candidate"] = "rejected"
	diffs := diffJSON("", planted, got)
	if len(diffs) != 1 || !strings.HasPrefix(diffs[0], `versions[1].tags.candidate: wrote "rejected", read "approved"`) {
		t.Errorf("a planted tag difference: got %q, want exactly versions[1].tags.candidate", diffs)
	}
	// Planted: a flipped byte of the artifact.
	planted = expectedReadback(t, w)
	wrong := bytes.Clone(w.weights)
	wrong[0] ^= 1
	wrongSum := sha256.Sum256(wrong)
	planted["artifact"].(map[string]any)["sha256"] = hex.EncodeToString(wrongSum[:])
	if diffs := diffJSON("", planted, got); len(diffs) != 1 || !strings.HasPrefix(diffs[0], "artifact.sha256: ") {
		t.Errorf("a planted artifact difference: got %q, want exactly artifact.sha256", diffs)
	}
}

// expectedReadback is what readback.py must print, built from what the
// steps wrote (not from what the Go client read back), as generic JSON.
func expectedReadback(t *testing.T, w *written) map[string]any {
	t.Helper()
	aliasesOf := map[string][]string{}
	for a, v := range w.aliases {
		aliasesOf[v] = append(aliasesOf[v], a)
	}
	var versions []map[string]any
	for _, v := range w.versions {
		aliases := aliasesOf[v.version]
		sort.Strings(aliases)
		if aliases == nil {
			aliases = []string{}
		}
		versions = append(versions, map[string]any{
			"version": v.version, "source": v.source, "run_id": v.runID, "status": "READY",
			"description": v.description, "tags": map[string]string(v.tags), "aliases": aliases,
		})
	}
	newest := w.versions[len(w.versions)-1]
	info := w.run.Info
	want := map[string]any{
		"registered_model": map[string]any{"name": w.model, "description": w.modelDesc, "tags": map[string]string(w.modelTags), "aliases": w.aliases},
		"versions":         versions,
		"runs": map[string]any{info.ID: map[string]any{
			"name": info.Name, "experiment_id": w.experimentID, "status": "FINISHED",
			"start_time": info.StartTime, "end_time": info.EndTime, "artifact_uri": info.ArtifactURI,
			"params": map[string]string(w.params), "metrics": w.metrics, "tags": map[string]string(w.runTags),
		}},
		"moves":    []any{}, // no alias move was recorded through internal/lifecycle
		"artifact": map[string]any{"source": newest.source, "path": "weights.bin", "sha256": fmt.Sprintf("%x", sha256.Sum256(w.weights))},
	}
	// Through JSON, so both sides have the same types (float64, []any,
	// map[string]any); KeyValues are converted above, since they marshal to
	// MLflow's wire list, not the dicts Python prints.
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	return generic
}

// diffJSON lists, sorted, every path where the decoded JSON values want
// (what was written) and got (what was read) differ, keys missing on either
// side included.
func diffJSON(path string, want, got any) []string {
	field := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: wrote an object, read %T %v", path, got, got)}
		}
		var diffs []string
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: wrote %s, read nothing", field(k), show(wv)))
				continue
			}
			diffs = append(diffs, diffJSON(field(k), wv, gv)...)
		}
		for k, gv := range g {
			if _, ok := w[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: wrote nothing, read %s", field(k), show(gv)))
			}
		}
		sort.Strings(diffs)
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: wrote %s, read %s", path, show(want), show(got))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, diffJSON(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: wrote %s, read %s", path, show(want), show(got))}
		}
		return nil
	}
}

func show(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}
