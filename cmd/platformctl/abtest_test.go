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

	"github.com/ml-platform/platform/internal/vectortest"
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
	vectortest.Fresh(t, filepath.Join(analyzeVectorsDir, "gen_analyze_vectors.py"), filepath.Join(analyzeVectorsDir, "analyze_vectors.json"))
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

// gitRepo copies the repository's infrastructure and experiments into a new
// Git repository with one commit.
func gitRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"infrastructure", filepath.Join("config", "experiments")} {
		if err := os.CopyFS(filepath.Join(root, dir), os.DirFS(filepath.Join("..", "..", dir))); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GIT_AUTHOR_NAME", "test")
	t.Setenv("GIT_AUTHOR_EMAIL", "test@example.com")
	t.Setenv("GIT_COMMITTER_NAME", "test")
	t.Setenv("GIT_COMMITTER_EMAIL", "test@example.com")
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"config", "commit.gpgsign", "false"}, {"add", "."}, {"commit", "-q", "-m", "the repository"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return root
}

// TestAbtestCommands: start, promote and abort, one command each, on a Git
// copy of the repository: each makes one commit on its own branch.
func TestAbtestCommands(t *testing.T) {
	root := gitRepo(t)
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append(args, "--root", root), func(string) string { return "" }, &out, io.Discard)
		return out.String(), err
	}
	branch := func() string {
		cmd := exec.Command("git", "branch", "--show-current")
		cmd.Dir = root
		out, _ := cmd.Output()
		return strings.TrimSpace(string(out))
	}
	out, err := cli("abtest", "start", "v2-vs-v1", "staging")
	if err != nil || !strings.Contains(out, "staging (namespace ml-inference-staging): ML_INFERENCE_TRAFFIC=v1=50,v2=50") || branch() != "abtest/v2-vs-v1/start-staging" {
		t.Fatalf("start: %v\n%s(branch %s)", err, out, branch())
	}
	t.Logf("abtest start:\n%s", out)
	// promote without a verdict source fails and says how to proceed.
	if _, err := cli("abtest", "promote", "v2-vs-v1", "--prometheus-url", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "--winner") {
		t.Errorf("promote with VictoriaMetrics unreachable: %v", err)
	}
	out, err = cli("abtest", "promote", "v2-vs-v1", "--winner", "v2")
	if err != nil || !strings.Contains(out, "ML_INFERENCE_TRAFFIC=v2=100") || !strings.Contains(out, "platformctl model promote v2 --alias staging") || branch() != "abtest/v2-vs-v1/promote-v2" {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	t.Logf("abtest promote:\n%s", out)
	out, err = cli("abtest", "abort", "v2-vs-v1", "--no-commit")
	if err != nil || !strings.Contains(out, "ML_INFERENCE_TRAFFIC=v1=100") || !strings.Contains(out, "not committed") {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	// With the abort uncommitted, a committing command refuses to sweep it up.
	if _, err := cli("abtest", "abort", "v2-vs-v1"); err == nil || !strings.Contains(err.Error(), "uncommitted changes") {
		t.Errorf("abort over uncommitted changes: %v", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"abtest", "start", "v2-vs-v1"}, "usage"},
		{[]string{"abtest", "start", "nope", "dev"}, `no experiment "nope"`},
		{[]string{"abtest", "start", "v2-vs-v1", "qa", "--no-commit"}, `unknown environment "qa"`},
		{[]string{"abtest", "report", "v2-vs-v1", "--env", "dev"}, "runs in no environment dev"},
		{[]string{"abtest", "report", "v2-vs-v1", "--from", "yesterday"}, "--from"},
	} {
		if _, err := cli(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}
