package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ml-platform/platform/internal/model"
	"github.com/ml-platform/platform/internal/registry"
)

func loadSet(t *testing.T) *registry.Set {
	t.Helper()
	live, err := registry.NewLive(context.Background(), registry.Directory{Root: filepath.Join("..", "..", "models")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return live.Current()
}

func TestParseWeights(t *testing.T) {
	good := map[string]string{"v1=90,v2=10": "[{v1 90} {v2 10}]", " v1 = 1 , v2=3 ": "[{v1 1} {v2 3}]", "": "[]"}
	for in, want := range good {
		w, err := ParseWeights(in)
		if err != nil || fmt.Sprint(w) != want {
			t.Errorf("ParseWeights(%q) = %v, %v; want %s", in, w, err, want)
		}
	}
	for _, in := range []string{"v1", "v1=x", "v1=-1", "v1=0", "v1=1,v1=2", "bad name=1", "v1=10,=5"} {
		if _, err := ParseWeights(in); err == nil {
			t.Errorf("ParseWeights(%q) accepted", in)
		}
	}
}

func TestPick(t *testing.T) {
	set := loadSet(t)
	r := New([]Weight{{"v1", 50}, {"v2", 50}, {"v9", 100}}) // v9 is not loaded
	if got := r.Split(set); got["v1"] != 50 || got["v2"] != 50 {
		t.Errorf("split ignores unloaded versions: %v", got)
	}
	if _, err := r.Pick(set, "v9", ""); err == nil || !strings.Contains(err.Error(), "v1, v2") {
		t.Errorf("pin of unloaded version: %v", err)
	}
	// Stickiness: one key, one version; keys spread across both.
	seen := map[string]bool{}
	for i := range 200 {
		key := fmt.Sprintf("user-%d", i)
		first, _ := r.Pick(set, "", key)
		for range 5 {
			if again, _ := r.Pick(set, "", key); again.Meta.Version != first.Meta.Version {
				t.Fatalf("key %s moved", key)
			}
		}
		seen[first.Meta.Version] = true
	}
	if !seen["v1"] || !seen["v2"] {
		t.Errorf("keys did not spread: %v", seen)
	}
	// No weights: the latest version takes everything.
	if v, _ := New(nil).Pick(set, "", "k"); v.Meta.Version != "v3" {
		t.Errorf("default version %s, want v3", v.Meta.Version)
	}
}

// TestRampKeepsUsers: raising the canary's weight moves users only towards
// the canary, never away from it.
func TestRampKeepsUsers(t *testing.T) {
	set := loadSet(t)
	before, after := New([]Weight{{"v1", 90}, {"v2", 10}}), New([]Weight{{"v1", 80}, {"v2", 20}})
	for i := range 2000 {
		key := fmt.Sprintf("u%d", i)
		a, _ := before.Pick(set, "", key)
		b, _ := after.Pick(set, "", key)
		if a.Meta.Version == "v2" && b.Meta.Version != "v2" {
			t.Fatalf("user %s left the canary when its weight grew", key)
		}
	}
}

// aliased is a source serving models/v1 as registry version v7
// (production, the primary) and models/v2 as v12 (staging).
type aliased struct{}

func (aliased) Load(context.Context) ([]registry.Entry, error) {
	var out []registry.Entry
	for _, s := range []struct {
		dir, name, alias string
		primary          bool
	}{{"v1", "v7", "production", true}, {"v2", "v12", "staging", false}} {
		v, err := model.LoadArtifact(filepath.Join("..", "..", "models", s.dir))
		if err != nil {
			return nil, err
		}
		v.Meta.Version = s.name
		out = append(out, registry.Entry{Version: v, Origin: &registry.Origin{Aliases: []string{s.alias}, Primary: s.primary}})
	}
	return out, nil
}
func (aliased) Fingerprint(context.Context) (string, error) { return "x", nil }
func (aliased) String() string                              { return "aliased" }

// TestAliasesRoute: unpinned traffic goes to the primary (production), not
// to the newest version; an alias pins like a version name and weights
// may name aliases.
func TestAliasesRoute(t *testing.T) {
	live, err := registry.NewLive(context.Background(), aliased{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	set := live.Current()
	r := New(nil)
	for pin, want := range map[string]string{"": "v7", "staging": "v12", "production": "v7", "v12": "v12"} {
		if v, err := r.Pick(set, pin, "user"); err != nil || v.Meta.Version != want {
			t.Errorf("Pick(%q) = %v, %v; want %s", pin, v, err, want)
		}
	}
	if split := r.Split(set); split["v7"] != 100 || split["v12"] != 0 {
		t.Errorf("split without weights %v, want all to production's v7", split)
	}
	_, err = r.Pick(set, "canary", "")
	if err == nil || !strings.Contains(err.Error(), "v7, v12, production, staging") {
		t.Errorf("an unknown pin: %v, want the versions and aliases listed", err)
	}
	w, err := ParseWeights("production=90,staging=10")
	if err != nil {
		t.Fatal(err)
	}
	split := New(w).Split(set)
	if split["v7"] != 90 || split["v12"] != 10 || len(split) != 2 {
		t.Errorf("split by aliases %v, want v7 90 and v12 10", split)
	}
}
