package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var analyzeVectorsDir = filepath.Join("testdata", "abtest")

type analyzeVectors struct {
	Versions map[string]string `json:"versions"`
	Cases    []struct {
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
		Want  struct {
			ZTest      map[string]float64 `json:"z_test"`
			SRM        map[string]float64 `json:"srm"`
			Sequential map[string]float64 `json:"sequential"`
		} `json:"want"`
	} `json:"cases"`
}

// analyze runs `platformctl abtest analyze --input` on raw and decodes what it
// printed into a generic document.
func analyze(t *testing.T, raw []byte) (map[string]any, error) {
	t.Helper()
	in := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(in, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"abtest", "analyze", "--input", in}, func(string) string { return "" }, &out, io.Discard); err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	return doc, nil
}

func number(doc map[string]any, section, key string) (float64, bool) {
	s, _ := doc[section].(map[string]any)
	v, ok := s[key].(float64)
	return v, ok
}

// TestAnalyzeMatchesReferences: the command's z-test (statsmodels),
// sample-ratio check (scipy) and always-valid p-value and interval (gbstats)
// for every case of testdata/abtest/analyze_vectors.json, to 1e-9
// (absolute for p-values, relative for interval ends).
func TestAnalyzeMatchesReferences(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(analyzeVectorsDir, "analyze_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v analyzeVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) < 5 {
		t.Fatalf("%d cases", len(v.Cases))
	}
	for _, c := range v.Cases {
		doc, err := analyze(t, c.Input)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		for section, want := range map[string]map[string]float64{"z_test": c.Want.ZTest, "srm": c.Want.SRM, "sequential": c.Want.Sequential} {
			for key, w := range want {
				got, ok := number(doc, section, key)
				if !ok {
					t.Errorf("%s: %s.%s missing from the output", c.Name, section, key)
					continue
				}
				if err := closeTo(got, w, key == "p_value"); err != nil {
					t.Errorf("%s: %s.%s: %v", c.Name, section, key, err)
				}
			}
		}
		t.Logf("%s: verdict %v (%v)", c.Name, doc["verdict"], doc["reason"])
	}
	t.Logf("references: %v", v.Versions)
}

// closeTo compares to 1e-9: absolute for probabilities, relative otherwise.
func closeTo(got, want float64, probability bool) error {
	bound := 1e-9
	if !probability {
		bound = math.Max(1e-9*math.Abs(want), 1e-12)
	}
	if math.IsNaN(got) || math.Abs(got-want) > bound {
		return fmt.Errorf("%.17g, want %.17g (diff %.3g > %.3g)", got, want, got-want, bound)
	}
	return nil
}

// TestAnalyzeComparisonCatchesPerturbation: the comparison above rejects a
// 1e-6 error in a p-value and in an interval end.
func TestAnalyzeComparisonCatchesPerturbation(t *testing.T) {
	if closeTo(0.27498030769047+1e-6, 0.27498030769047, true) == nil || closeTo(0.0959239401+1e-6, 0.0959239401, false) == nil {
		t.Error("a 1e-6 perturbation passes the comparison")
	}
}

// TestAnalyzeVectorsFresh regenerates the vectors with the pinned reference
// implementations ($STATS_PYTHON, the stats virtualenv) and fails if the
// committed file differs.
func TestAnalyzeVectorsFresh(t *testing.T) {
	python := os.Getenv("STATS_PYTHON")
	if python == "" {
		if testing.Short() {
			t.Skip("STATS_PYTHON is not set (skipped in -short mode)")
		}
		t.Fatal(`STATS_PYTHON is not set: export STATS_PYTHON="$(hack/venv.sh stats)/bin/python" (hack/test.sh does), or run with -short`)
	}
	out := filepath.Join(t.TempDir(), "analyze_vectors.json")
	cmd := exec.CommandContext(t.Context(), python, filepath.Join(analyzeVectorsDir, "gen_analyze_vectors.py"), "--out", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gen_analyze_vectors.py: %v\n%s", err, stderr.String())
	}
	fresh, _ := os.ReadFile(out)
	committed, err := os.ReadFile(filepath.Join(analyzeVectorsDir, "analyze_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Fatalf("testdata/abtest/analyze_vectors.json is stale; regenerate it:\n\t%s cmd/platformctl/testdata/abtest/gen_analyze_vectors.py --out cmd/platformctl/testdata/abtest/analyze_vectors.json", python)
	}
}

// TestAnalyzeInputErrors: a bad input file is an error that names the file
// and the field.
func TestAnalyzeInputErrors(t *testing.T) {
	good := `{"alpha": 0.05, "expected_split": [0.5, 0.5], "arms": [{"name": "v2", "n": 1000, "successes": 810}, {"name": "v3", "n": 1000, "successes": 850}]}`
	if doc, err := analyze(t, []byte(good)); err != nil || doc["verdict"] == nil {
		t.Fatalf("good input: %v %v", doc, err)
	}
	for name, c := range map[string]struct{ from, to, want string }{
		"unknown field":   {`"alpha"`, `"alfa"`, `unknown field "alfa"`},
		"no alpha":        {`"alpha": 0.05,`, ``, `"alpha" is required`},
		"bad alpha":       {`0.05`, `0.7`, "alpha"},
		"one arm":         {`, {"name": "v3", "n": 1000, "successes": 850}`, ``, `"arms" must hold 2`},
		"successes > n":   {`"successes": 850`, `"successes": 1850`, "arms[1]: successes 1850"},
		"split":           {`[0.5, 0.5]`, `[1]`, `"expected_split" must hold 2`},
		"zero share":      {`[0.5, 0.5]`, `[0.5, 0]`, "split"},
		"wrong type":      {`"n": 1000`, `"n": "many"`, "n"},
		"not JSON":        {`{`, `[`, "invalid character"},
		"nameless arm":    {`"name": "v2", `, ``, "arms[0].name is required"},
		"guardrail field": {`"alpha"`, `"guardrails": {"margin": 1}, "alpha"`, `unknown field "margin"`},
	} {
		body := strings.Replace(good, c.from, c.to, 1)
		if body == good {
			t.Fatalf("%s: %q not in the input", name, c.from)
		}
		_, err := analyze(t, []byte(body))
		if err == nil || !strings.Contains(err.Error(), "input.json") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error naming input.json and %q", name, err, c.want)
		}
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"abtest", "analyze"}, func(string) string { return "" }, io.Discard, &stderr); err == nil {
		t.Error("analyze without --input: no error")
	}
}
