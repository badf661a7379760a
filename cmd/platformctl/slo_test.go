package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	prommodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
)

// runbookURLPrefix is how every SLO alert's runbook_url starts; the rest is
// a path in this repository.
const runbookURLPrefix = "https://github.com/ml-platform/platform/blob/main/"

// TestSLORulesAreFresh fails when the committed rules are not what
// `platformctl slo generate` makes from config/slos today.
func TestSLORulesAreFresh(t *testing.T) {
	chdirRepo(t)
	var out strings.Builder
	if err := run(context.Background(), []string{"slo", "generate", "--check"}, os.Getenv, &out, io.Discard); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// Generation is deterministic: twice gives the same bytes.
	a, err := generateSLORules(context.Background(), defaultSLODir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := generateSLORules(context.Background(), defaultSLODir)
	if string(a) != string(b) {
		t.Fatal("two generations differ")
	}
}

// TestSLOCheckCatchesPlantedChange edits a copy of the committed rules and
// expects --check to name it.
func TestSLOCheckCatchesPlantedChange(t *testing.T) {
	chdirRepo(t)
	data, err := os.ReadFile(defaultSLORules)
	if err != nil {
		t.Fatal(err)
	}
	plants := map[string]func(string) string{
		"hand-edited severity": func(s string) string { return strings.Replace(s, "severity: page", "severity: ticket", 1) },
		"widened threshold":    func(s string) string { return strings.Replace(s, "(14.4 * 0.05)", "(20 * 0.05)", 1) },
		"appended rule":        func(s string) string { return s + "- name: extra\n  rules: []\n" },
	}
	for name, plant := range plants {
		t.Run(name, func(t *testing.T) {
			planted := plant(string(data))
			if planted == string(data) {
				t.Fatalf("plant %q changed nothing; update the test", name)
			}
			path := filepath.Join(t.TempDir(), "rules.yaml")
			os.WriteFile(path, []byte(planted), 0o644)
			err := run(context.Background(), []string{"slo", "generate", "--check", "--out", path}, os.Getenv, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "stale") {
				t.Fatalf("err %v, want it to name %s as stale", err, path)
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "none.yaml")
	err = run(context.Background(), []string{"slo", "generate", "--check", "--out", missing}, os.Getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: err %v, want it named", err)
	}
}

// TestSLORulesAreValidAndDocumented parses the committed file as Prometheus
// does (rulefmt: the checks `promtool check rules` runs, PromQL included) and
// requires every alert to carry a severity, a summary, a description and a
// runbook_url whose file exists. It logs every rule name.
func TestSLORulesAreValidAndDocumented(t *testing.T) {
	chdirRepo(t)
	groups, errs := rulefmt.ParseFile(defaultSLORules, false, prommodel.UTF8Validation)
	if len(errs) > 0 {
		t.Fatalf("rulefmt: %v", errs)
	}
	var alerts, records []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records = append(records, g.Name+": "+r.Record+" "+r.Labels["sloth_window"])
				continue
			}
			alerts = append(alerts, g.Name+": "+r.Alert+" severity="+r.Labels["severity"]+" "+r.Annotations["runbook_url"])
			if s := r.Labels["severity"]; s != "page" && s != "ticket" {
				t.Errorf("alert %s (group %s): severity %q, want page or ticket", r.Alert, g.Name, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s (group %s): no %s annotation", r.Alert, g.Name, a)
				}
			}
			url := r.Annotations["runbook_url"]
			rel, ok := strings.CutPrefix(url, runbookURLPrefix)
			if !ok || !strings.HasPrefix(rel, "docs/runbooks/") || !strings.HasSuffix(rel, ".md") {
				t.Errorf("alert %s: runbook_url %q, want %sdocs/runbooks/<file>.md", r.Alert, url, runbookURLPrefix)
				continue
			}
			if _, err := os.Stat(filepath.FromSlash(rel)); err != nil {
				t.Errorf("alert %s: runbook %s: %v", r.Alert, rel, err)
			}
		}
	}
	if len(alerts) == 0 || len(records) == 0 {
		t.Fatalf("%d alerts, %d recording rules; want some of each", len(alerts), len(records))
	}
	t.Logf("%d recording rules:\n  %s", len(records), strings.Join(records, "\n  "))
	t.Logf("%d alerts:\n  %s", len(alerts), strings.Join(alerts, "\n  "))
}

// TestSLOBadSpecs: broken input is an error naming the file (and the field
// where there is one), never a panic.
func TestSLOBadSpecs(t *testing.T) {
	chdirRepo(t)
	good, err := os.ReadFile(filepath.Join(defaultSLODir, "ml-inference.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, spec, want string
	}{
		{"not yaml", "version: [unclosed", "yaml"},
		{"wrong version", strings.Replace(string(good), `version: "prometheus/v1"`, `version: "prometheus/v2"`, 1), "version"},
		{"misspelt field", strings.Replace(string(good), "objective: 95", "objectiv: 95", 1), "objectiv"},
		{"objective over 100", strings.Replace(string(good), "objective: 95", "objective: 950", 1), "objective"},
		{"no alert name", strings.Replace(string(good), "name: MLInferenceLatencyBudgetBurn", "name: \"\"", 1), "alerting.name"},
		{"no service", strings.Replace(string(good), `service: "ml-inference"`, `service: ""`, 1), "service"},
		{"two documents", string(good) + "\n---\n" + string(good), "one YAML document"},
		{"no window placeholder", strings.ReplaceAll(string(good), "[{{.window}}]", "[5m]"), ""},
		{"bad template", strings.Replace(string(good), "[{{.window}}]", "[{{.window]", 1), ""},
		{"empty", "", "one YAML document"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "bad.yaml")
			os.WriteFile(path, []byte(c.spec), 0o644)
			_, err := generateSLORules(context.Background(), dir)
			if err == nil {
				t.Fatalf("no error for %s", c.name)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %q, want it to name %s and %q", err, path, c.want)
			}
			t.Log(err)
		})
	}
	if _, err := generateSLORules(context.Background(), t.TempDir()); err == nil {
		t.Error("an empty spec directory is not an error")
	}
}

// TestSlothVersionMatchesGoMod keeps the header's version honest.
func TestSlothVersionMatchesGoMod(t *testing.T) {
	chdirRepo(t)
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(mod), "\n"), "\tgithub.com/slok/sloth "+slothVersion) {
		t.Errorf("go.mod does not require github.com/slok/sloth %s; update slothVersion", slothVersion)
	}
}
