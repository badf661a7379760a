package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"time"

	"github.com/ml-platform/platform/internal/testcluster"
)

// Options configure a verify run.
type Options struct {
	Root       string   // repository root
	ConfigPath string   // "" means Root/infrastructure/verify.yaml
	AssetsDir  string   // kube-apiserver and etcd ("" reads KUBEBUILDER_ASSETS)
	CRDDirs    []string // CRDs to install in the test API server
	SkipServer bool     // render and static checks only
}

// Summary is what a run did.
type Summary struct {
	Rendered  map[string]int // objects per entry point
	Validated map[string]int // objects the API server accepted, per entry point
	Findings  []Finding
	Timings   []Timing
}

// Timing is how long one stage took.
type Timing struct {
	Stage string
	Took  time.Duration
}

// ErrFindings is returned when verify found problems.
var ErrFindings = errors.New("verify failed")

// Run renders, checks and validates the repository, writing progress and
// findings to out. It returns ErrFindings (wrapped with the count) when
// anything is wrong.
func Run(ctx context.Context, o Options, out io.Writer) (*Summary, error) {
	cfgPath := o.ConfigPath
	if cfgPath == "" {
		cfgPath = filepath.Join(o.Root, ConfigFile)
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	cfg = cfg.Rooted(o.Root)
	s := &Summary{Rendered: map[string]int{}}
	stage := func(name string, start time.Time) {
		s.Timings = append(s.Timings, Timing{name, time.Since(start)})
	}

	t := time.Now()
	r, fs := Render(cfg)
	stage("render", t)
	for _, where := range r.Order {
		s.Rendered[rel(o.Root, where)] = len(r.Objects[where])
	}
	fmt.Fprintf(out, "render: %d entry points, %s\n", len(r.Order), counts(s.Rendered))
	s.Findings = append(s.Findings, fs...)

	t = time.Now()
	fs = Static(cfg, o.Root, r)
	fs = append(fs, Network(cfg, r, out)...) // connectivity matrix, network.go
	stage("static checks", t)
	fmt.Fprintf(out, "static checks: %d findings\n", len(fs))
	s.Findings = append(s.Findings, fs...)

	if !o.SkipServer {
		t = time.Now()
		cluster, err := testcluster.Start(testcluster.Options{AssetsDir: o.AssetsDir, CRDDirs: o.CRDDirs})
		if err != nil {
			return s, err
		}
		defer cluster.Stop()
		stage("start kube-apiserver", t)
		fmt.Fprintf(out, "kube-apiserver: started with %d CRDs in %v\n", cluster.CRDs, cluster.Started.Round(time.Millisecond))
		t = time.Now()
		res, fs := Server(ctx, cluster.Config, cfg, r)
		stage("server-side validation", t)
		s.Validated = map[string]int{}
		for where, n := range res.Validated {
			s.Validated[rel(o.Root, where)] = n
		}
		fmt.Fprintf(out, "kube-apiserver: accepted %s\n", counts(s.Validated))
		s.Findings = append(s.Findings, fs...)
	}

	for _, f := range s.Findings {
		f.Where = rel(o.Root, f.Where)
		fmt.Fprintf(out, "  FAIL %s\n", f)
	}
	for _, tm := range s.Timings {
		fmt.Fprintf(out, "  %-24s %v\n", tm.Stage, tm.Took.Round(time.Millisecond))
	}
	if n := len(s.Findings); n > 0 {
		return s, fmt.Errorf("%w: %d findings", ErrFindings, n)
	}
	fmt.Fprintln(out, "verify: ok")
	return s, nil
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !filepath.IsAbs(r) && r != "" && r[0] != '.' {
		return r
	}
	return p
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	total := 0
	for k, n := range m {
		keys = append(keys, k)
		total += n
	}
	sort.Strings(keys)
	s := fmt.Sprintf("%d objects", total)
	for i, k := range keys {
		if i == 0 {
			s += " ("
		} else {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, m[k])
	}
	if len(keys) > 0 {
		s += ")"
	}
	return s
}
