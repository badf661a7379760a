package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ml-platform/platform/internal/config"
	"github.com/ml-platform/platform/internal/lifecycle"
	"github.com/ml-platform/platform/internal/mlflow"
)

// The model lifecycle commands (register, promote, rollback, history, list)
// share these flags.
type registryFlags struct {
	uri   *string
	model *string
}

func addRegistryFlags(fs *flag.FlagSet, getenv func(string) string) registryFlags {
	return registryFlags{
		uri:   fs.String("mlflow-uri", lifecycle.DefaultTrackingURI(getenv), "MLflow tracking server (default: $MLFLOW_TRACKING_URI, else http://localhost:5000, which make mlflow serves)"),
		model: fs.String("model", lifecycle.DefaultModel, "registered model name"),
	}
}

func (f registryFlags) open() (*lifecycle.Registry, error) {
	c, err := mlflow.New(*f.uri)
	if err != nil {
		return nil, fmt.Errorf("--mlflow-uri: %w", err)
	}
	return lifecycle.New(c, *f.model)
}

// explain adds what to do when MLflow cannot be reached.
func explain(err error) error {
	if errors.Is(err, lifecycle.ErrUnreachable) {
		return fmt.Errorf("%w\nstart MLflow (make mlflow) or point --mlflow-uri at it", err)
	}
	return err
}

func modelRegister(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl model register", stderr)
	reg := addRegistryFlags(fs, getenv)
	fromDir := fs.String("from-dir", "", "the artifact directory to register, e.g. models/v2 (required)")
	runID := fs.String("run-id", "", "register the artifact a run already logged (below its model/ artifacts) instead of logging a new run")
	experiment := fs.String("experiment", "", "experiment of the new run (default: the model's name)")
	gitRevision := fs.String("git-revision", "", "the commit to record (default: git rev-parse HEAD in --from-dir)")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	if *fromDir == "" {
		return errors.New("--from-dir is required: the artifact directory to register (e.g. models/v2)")
	}
	r, err := reg.open()
	if err != nil {
		return err
	}
	a, err := lifecycle.ReadArtifact(*fromDir)
	if err != nil {
		return err
	}
	rev := lifecycle.Revision{Commit: *gitRevision}
	if rev.Commit == "" {
		if rev, err = lifecycle.GitRevision(ctx, *fromDir); err != nil {
			return err
		}
	}
	if *experiment == "" {
		*experiment = r.Model()
	}
	res, err := r.Register(ctx, lifecycle.RegisterRequest{Artifact: a, Revision: rev, RunID: *runID, Experiment: *experiment})
	if err != nil {
		return explain(err)
	}
	mv := res.Version
	if res.Existing {
		fmt.Fprintf(stdout, "%s version %s already holds %s (%s, run %s): nothing registered\n", r.Model(), mv.Version, a.Digest, a.Dir, mv.RunID)
		return nil
	}
	dirty := ""
	if rev.Dirty {
		dirty = " (with uncommitted changes)"
	}
	fmt.Fprintf(stdout, "registered %s version %s (served as v%s) from %s\n  digest %s\n  run    %s\n  source %s\n  git    %s%s\n",
		r.Model(), mv.Version, mv.Version, a.Dir, a.Digest, res.RunID, mv.Source, rev.Commit, dirty)
	fmt.Fprintf(stdout, "promote it with: platformctl model promote %s --alias staging --reason \"...\"\n", mv.Version)
	return nil
}

// moveFlags are the flags of promote and rollback.
type moveFlags struct {
	alias, actor, reason *string
}

func addMoveFlags(fs *flag.FlagSet, getenv func(string) string) moveFlags {
	return moveFlags{
		alias:  fs.String("alias", "", "the alias to move: "+strings.Join(lifecycle.Aliases, " or ")+" (required)"),
		actor:  fs.String("actor", "", "who moves it, for the record (default: git config user.email, else $USER)"),
		reason: fs.String("reason", "", "why, for the record (required)"),
	}
}

func (f moveFlags) request(ctx context.Context, getenv func(string) string) (lifecycle.MoveRequest, error) {
	if *f.alias == "" {
		return lifecycle.MoveRequest{}, fmt.Errorf("--alias is required: %s", strings.Join(lifecycle.Aliases, " or "))
	}
	actor := *f.actor
	if actor == "" {
		actor = defaultActor(ctx, getenv)
	}
	return lifecycle.MoveRequest{Alias: *f.alias, Actor: actor, Reason: *f.reason}, nil
}

// defaultActor is git's user.email, else $USER ("" if neither is set: the
// move is then refused, asking for --actor).
func defaultActor(ctx context.Context, getenv func(string) string) string {
	if out, err := exec.CommandContext(ctx, "git", "config", "user.email").Output(); err == nil {
		if email := strings.TrimSpace(string(out)); email != "" {
			return email
		}
	}
	return getenv("USER")
}

// leadingArg splits off a first positional argument (before the flags).
func leadingArg(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func modelPromote(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl model promote VERSION", stderr)
	reg := addRegistryFlags(fs, getenv)
	mf := addMoveFlags(fs, getenv)
	version, rest := leadingArg(args)
	if err := config.Parse(fs, "PLATFORMCTL", rest, getenv); err != nil {
		return err
	}
	if version == "" {
		return errors.New("usage: platformctl model promote VERSION --alias staging|production --reason WHY")
	}
	// v3 is how servers name registry version 3.
	if n, ok := strings.CutPrefix(version, "v"); ok && lifecycle.CheckVersion(n) == nil {
		version = n
	}
	req, err := mf.request(ctx, getenv)
	if err != nil {
		return err
	}
	r, err := reg.open()
	if err != nil {
		return err
	}
	m, err := r.Promote(ctx, version, req)
	if errors.Is(err, lifecycle.ErrNoChange) {
		fmt.Fprintf(stdout, "%s already points at version %s: nothing moved or recorded\n", req.Alias, version)
		return nil
	}
	if err != nil {
		return explain(err)
	}
	printMove(stdout, m)
	return nil
}

func modelRollback(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl model rollback", stderr)
	reg := addRegistryFlags(fs, getenv)
	mf := addMoveFlags(fs, getenv)
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	req, err := mf.request(ctx, getenv)
	if err != nil {
		return err
	}
	r, err := reg.open()
	if err != nil {
		return err
	}
	m, err := r.Rollback(ctx, req)
	if err != nil {
		return explain(err)
	}
	printMove(stdout, m)
	return nil
}

func printMove(w io.Writer, m lifecycle.Move) {
	from := "none"
	if m.From != "" {
		from = "version " + m.From
	}
	fmt.Fprintf(w, "%s of %s: %s -> version %s (%s, by %s: %s)\n", m.Action, m.Alias, from, m.To, m.At.UTC().Format(time.RFC3339), m.Actor, m.Reason)
	fmt.Fprintf(w, "recorded as run %s in experiment %q\n", m.RunID, lifecycle.MovesExperiment(m.Model))
	fmt.Fprintf(w, "servers following models:/%s@%s serve v%s after their next poll (--registry-poll, 10s by default)\n", m.Model, m.Alias, m.To)
}

func modelHistory(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl model history", stderr)
	reg := addRegistryFlags(fs, getenv)
	alias := fs.String("alias", "", "only this alias (default: every alias)")
	at := fs.String("at", "", "also say which version each alias held at this time (RFC 3339, e.g. 2026-12-01T10:00:00Z)")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	var when time.Time
	if *at != "" {
		var err error
		if when, err = time.Parse(time.RFC3339, *at); err != nil {
			return fmt.Errorf("--at %q: want an RFC 3339 time such as 2026-12-01T10:00:00Z", *at)
		}
	}
	r, err := reg.open()
	if err != nil {
		return err
	}
	moves, err := r.History(ctx, *alias)
	if err != nil {
		return explain(err)
	}
	if len(moves) == 0 {
		fmt.Fprintf(stdout, "no alias move of %s is recorded\n", r.Model())
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME (UTC)\tALIAS\tACTION\tFROM\tTO\tACTOR\tREASON")
		for _, m := range moves {
			action := m.Action
			if m.Status != mlflow.RunFinished {
				action += " (in doubt: " + string(m.Status) + ")"
			}
			from := m.From
			if from == "" {
				from = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.At.UTC().Format(time.RFC3339), m.Alias, action, from, m.To, m.Actor, m.Reason)
		}
		tw.Flush()
	}
	if !when.IsZero() {
		aliases := lifecycle.Aliases
		if *alias != "" {
			aliases = []string{*alias}
		}
		for _, a := range aliases {
			held := lifecycle.HeldAt(moves, a, when)
			if held == "" {
				held = "no version (by the record)"
			} else {
				held = "version " + held
			}
			fmt.Fprintf(stdout, "at %s, %s held %s\n", when.UTC().Format(time.RFC3339), a, held)
		}
	}
	drift, err := r.Drift(ctx, moves)
	if err != nil {
		return explain(err)
	}
	for _, d := range drift {
		if *alias == "" || strings.HasPrefix(d, *alias+" ") {
			fmt.Fprintf(stdout, "warning: %s\n", d)
		}
	}
	return nil
}

func modelList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl model list", stderr)
	reg := addRegistryFlags(fs, getenv)
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	r, err := reg.open()
	if err != nil {
		return err
	}
	versions, err := r.List(ctx)
	if err != nil {
		return explain(err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSERVED AS\tALIASES\tCREATED (UTC)\tSTATUS\tARTIFACT\tKIND\tDIGEST\tGIT\tMETRICS\tOTHER TAGS")
	for _, v := range versions {
		aliases := strings.Join(v.Aliases, ",")
		if aliases == "" {
			aliases = "-"
		}
		fmt.Fprintf(tw, "%s\tv%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Version, v.Version, aliases,
			v.CreationTimestamp.Time().UTC().Format(time.RFC3339), v.Status,
			orDash(v.Tags[lifecycle.TagArtifactVersion]), orDash(v.Tags[lifecycle.TagKind]),
			short(strings.TrimPrefix(v.Tags[lifecycle.TagDigest], "sha256:"), 12), short(v.Tags[lifecycle.TagGitRevision], 10),
			formatMetrics(v.RunMetrics), otherTags(v.Tags))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return orDash(s)
}

func formatMetrics(m map[string]float64) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+strconv.FormatFloat(m[k], 'g', 4, 64))
	}
	return strings.Join(parts, " ")
}

func otherTags(tags mlflow.KeyValues) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		switch k {
		case lifecycle.TagDigest, lifecycle.TagKind, lifecycle.TagArtifactVersion, lifecycle.TagGitRevision:
			continue
		}
		parts = append(parts, k+"="+tags[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// modelSeed gives a fresh registry what the image carries: every artifact of
// --models-dir registered (found by digest when it already is), and each
// --alias set if it points nowhere yet. A cluster runs it as a Job on every
// sync (infrastructure/base/ml-platform/seed); it never moves an alias an
// operator has set.
func modelSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := config.NewFlagSet("platformctl model seed", stderr)
	reg := addRegistryFlags(fs, getenv)
	modelsDir := fs.String("models-dir", "models", "directory with one artifact directory per model version")
	var aliases []string
	fs.Func("alias", "ALIAS=VERSION: point ALIAS at the artifact of that version name (e.g. production=v2) if ALIAS is not set yet; repeatable", func(v string) error {
		aliases = append(aliases, v)
		return nil
	})
	actor := fs.String("actor", "", "who seeds, for the record (default: git config user.email, else $USER, else platformctl-seed)")
	gitRevision := fs.String("git-revision", "", "the commit to record (default: git rev-parse HEAD in --models-dir, else this binary's build revision)")
	if err := config.Parse(fs, "PLATFORMCTL", args, getenv); err != nil {
		return err
	}
	want := map[string]string{}
	for _, a := range aliases {
		alias, version, ok := strings.Cut(a, "=")
		if !ok || alias == "" || version == "" {
			return fmt.Errorf("--alias %q: want ALIAS=VERSION, e.g. production=v2", a)
		}
		if _, dup := want[alias]; dup {
			return fmt.Errorf("--alias %s is given twice", alias)
		}
		want[alias] = version
	}
	rev := lifecycle.Revision{Commit: *gitRevision}
	if rev.Commit == "" {
		var err error
		if rev, err = lifecycle.GitRevision(ctx, *modelsDir); err != nil {
			// In a container there is no work tree: the build says which
			// commit the image's models came from.
			rev = lifecycle.Revision{Commit: revision}
		}
	}
	who := *actor
	if who == "" {
		if who = defaultActor(ctx, getenv); who == "" {
			who = "platformctl-seed"
		}
	}
	r, err := reg.open()
	if err != nil {
		return err
	}
	res, err := r.Seed(ctx, lifecycle.SeedRequest{ModelsDir: *modelsDir, Aliases: want, Revision: rev, Actor: who})
	for _, reg := range res.Registered {
		state := "registered"
		if reg.Existing {
			state = "already registered"
		}
		fmt.Fprintf(stdout, "%s: %s version %s\n", state, r.Model(), reg.Version.Version)
	}
	for _, m := range res.Promoted {
		fmt.Fprintf(stdout, "set %s -> version %s\n", m.Alias, m.To)
	}
	for _, alias := range slices.Sorted(maps.Keys(res.Kept)) {
		fmt.Fprintf(stdout, "kept %s -> version %s (already set; seed never moves an alias)\n", alias, res.Kept[alias])
	}
	return explain(err)
}
