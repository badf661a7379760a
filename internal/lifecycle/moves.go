package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ml-platform/platform/internal/mlflow"
)

// Every alias move is a run in the experiment MovesExperiment(model), with
// these params (params, not tags: MLflow never lets a logged param change,
// which suits an audit record). The run starts before the alias moves and
// finishes after; a move whose alias call failed is FAILED, and one left
// RUNNING was interrupted between the two (in doubt).
const (
	paramModel  = "model"
	paramAlias  = "alias"
	paramFrom   = "from_version" // "" when the alias was not set
	paramTo     = "to_version"
	paramActor  = "actor"
	paramReason = "reason"
	paramAction = "action" // promote or rollback
)

// The actions a move records.
const (
	ActionPromote  = "promote"
	ActionRollback = "rollback"
)

// MovesExperiment is the experiment that records the alias moves of model.
func MovesExperiment(model string) string { return model + ".alias-moves" }

// maxReason bounds --reason (MLflow allows 6000 characters in a param).
const maxReason = 1000

// Move is one recorded move of an alias.
type Move struct {
	Model, Alias string
	From         string // "" when the alias was not set before
	To           string
	Actor        string
	Reason       string
	Action       string
	// At is when the alias moved: the record's end (its start while it is
	// still RUNNING).
	At     time.Time
	Status mlflow.RunStatus // FINISHED, or RUNNING for a move in doubt
	RunID  string
}

// MoveRequest says who moves an alias, and why.
type MoveRequest struct {
	Alias  string
	Actor  string
	Reason string
}

func (m MoveRequest) check() error {
	if err := CheckAlias(m.Alias); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(m.Actor) == "":
		return errors.New("no actor: say who moves the alias (--actor)")
	case strings.TrimSpace(m.Reason) == "":
		return errors.New("no reason: say why the alias moves (--reason); the history keeps it")
	case len(m.Reason) > maxReason:
		return fmt.Errorf("the reason is %d characters; keep it under %d", len(m.Reason), maxReason)
	}
	return nil
}

// ErrNoChange is a move to the version the alias already points at; nothing
// is recorded.
var ErrNoChange = errors.New("the alias already points at that version")

// Promote points the alias at version and records the move.
func (r *Registry) Promote(ctx context.Context, version string, req MoveRequest) (Move, error) {
	if err := req.check(); err != nil {
		return Move{}, err
	}
	if _, err := r.servable(ctx, version); err != nil {
		return Move{}, fmt.Errorf("promote: %w", err)
	}
	return r.move(ctx, version, req, ActionPromote)
}

// ErrNoPrevious is a rollback with no version to go back to.
var ErrNoPrevious = errors.New("no previous version to roll back to")

// Rollback points the alias back at the version it held before the current
// one, by the last recorded move (a second rollback therefore undoes the
// first), and records that as a move too. It refuses when the alias was
// moved outside the lifecycle since its last recorded move, since the record
// then does not say what came before.
func (r *Registry) Rollback(ctx context.Context, req MoveRequest) (Move, error) {
	if err := req.check(); err != nil {
		return Move{}, err
	}
	current, err := r.aliasVersion(ctx, req.Alias)
	if err != nil {
		return Move{}, fmt.Errorf("rollback: %w", err)
	}
	if current == "" {
		return Move{}, fmt.Errorf("rollback %s: %w: the alias is not set", req.Alias, ErrNoPrevious)
	}
	moves, err := r.History(ctx, req.Alias)
	if err != nil {
		return Move{}, fmt.Errorf("rollback: %w", err)
	}
	last, ok := lastFinished(moves)
	switch {
	case !ok:
		return Move{}, fmt.Errorf("rollback %s: %w: it points at version %s and no move of it is recorded", req.Alias, ErrNoPrevious, current)
	case last.To != current:
		return Move{}, fmt.Errorf("rollback %s: it points at version %s, but its last recorded move (%s by %s) set it to %s: it was moved outside platformctl, so the record cannot say what came before; move it with model promote", req.Alias, current, last.At.Format(time.RFC3339), last.Actor, last.To)
	case last.From == "":
		return Move{}, fmt.Errorf("rollback %s: %w: version %s is the first it pointed at (%s by %s)", req.Alias, ErrNoPrevious, current, last.At.Format(time.RFC3339), last.Actor)
	}
	if _, err := r.servable(ctx, last.From); err != nil {
		return Move{}, fmt.Errorf("rollback %s to version %s: %w", req.Alias, last.From, err)
	}
	return r.move(ctx, last.From, req, ActionRollback)
}

func lastFinished(moves []Move) (Move, bool) {
	for i := len(moves) - 1; i >= 0; i-- {
		if moves[i].Status == mlflow.RunFinished {
			return moves[i], true
		}
	}
	return Move{}, false
}

// aliasVersion is the version alias points at ("" when unset).
func (r *Registry) aliasVersion(ctx context.Context, alias string) (string, error) {
	rm, err := r.c.GetRegisteredModel(ctx, r.model)
	if errors.Is(err, mlflow.ErrNotFound) {
		return "", fmt.Errorf("no registered model %q: register a version first (platformctl model register)", r.model)
	}
	if err != nil {
		return "", r.reach(err)
	}
	v, _ := rm.AliasVersion(alias)
	return v, nil
}

// move records the move, points the alias at to, and finishes the record.
func (r *Registry) move(ctx context.Context, to string, req MoveRequest, action string) (Move, error) {
	from, err := r.aliasVersion(ctx, req.Alias)
	if err != nil {
		return Move{}, err
	}
	m := Move{Model: r.model, Alias: req.Alias, From: from, To: to, Actor: req.Actor, Reason: req.Reason, Action: action}
	if from == to {
		return m, fmt.Errorf("%s %s to version %s: %w", action, req.Alias, to, ErrNoChange)
	}
	exp, err := r.c.EnsureExperiment(ctx, MovesExperiment(r.model))
	if err != nil {
		return Move{}, r.reach(err)
	}
	name := fmt.Sprintf("%s %s: %s -> %s", action, req.Alias, orNone(from), to)
	run, err := r.c.CreateRun(ctx, mlflow.CreateRunRequest{ExperimentID: exp, Name: name, StartTime: r.now(),
		Tags: mlflow.KeyValues{"mlflow.user": req.Actor, "mlflow.note.content": req.Reason}})
	if err != nil {
		return Move{}, r.reach(err)
	}
	m.RunID = run.Info.ID
	finish := func(status mlflow.RunStatus) error {
		// Finish the record even if the caller's context ended.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		info, err := r.c.UpdateRun(fctx, run.Info.ID, status, r.now())
		m.At, m.Status = info.EndTime.Time(), status
		return err
	}
	err = r.c.LogBatch(ctx, run.Info.ID, mlflow.Batch{Params: mlflow.KeyValues{
		paramModel: r.model, paramAlias: req.Alias, paramFrom: from, paramTo: to,
		paramActor: req.Actor, paramReason: req.Reason, paramAction: action,
	}})
	if err == nil {
		err = r.c.SetAlias(ctx, r.model, req.Alias, to)
	}
	if err != nil {
		return Move{}, errors.Join(r.reach(err), finish(mlflow.RunFailed))
	}
	if err := finish(mlflow.RunFinished); err != nil {
		return m, fmt.Errorf("%s now points at version %s, but its record (run %s) could not be finished and stays RUNNING (history shows it as in doubt): %w", req.Alias, to, run.Info.ID, r.reach(err))
	}
	return m, nil
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// History lists the recorded moves of alias ("" for every alias), oldest
// first: the finished ones and those in doubt (RUNNING), not the failed.
func (r *Registry) History(ctx context.Context, alias string) ([]Move, error) {
	if alias != "" {
		if err := CheckAlias(alias); err != nil {
			return nil, err
		}
	}
	exp, err := r.c.GetExperimentByName(ctx, MovesExperiment(r.model))
	if errors.Is(err, mlflow.ErrNotFound) {
		return nil, nil // nothing ever moved
	}
	if err != nil {
		return nil, r.reach(err)
	}
	filter := fmt.Sprintf("params.%s = '%s' and attributes.status != 'FAILED'", paramModel, r.model)
	if alias != "" {
		filter += fmt.Sprintf(" and params.%s = '%s'", paramAlias, alias)
	}
	var moves []Move
	token := ""
	for {
		page, err := r.c.SearchRuns(ctx, mlflow.SearchRunsRequest{ExperimentIDs: []string{exp.ID}, Filter: filter, MaxResults: 1000, PageToken: token})
		if err != nil {
			return nil, r.reach(err)
		}
		for _, run := range page.Runs {
			if m, ok := moveOf(run); ok {
				moves = append(moves, m)
			}
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	slices.SortStableFunc(moves, func(a, b Move) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.RunID, b.RunID)
	})
	return moves, nil
}

func moveOf(run mlflow.Run) (Move, bool) {
	p := run.Data.Params
	if p[paramAlias] == "" || p[paramTo] == "" {
		return Move{}, false // interrupted before its params were logged
	}
	m := Move{Model: p[paramModel], Alias: p[paramAlias], From: p[paramFrom], To: p[paramTo], Actor: p[paramActor],
		Reason: p[paramReason], Action: p[paramAction], Status: run.Info.Status, RunID: run.Info.ID}
	m.At = run.Info.EndTime.Time()
	if m.At.IsZero() {
		m.At = run.Info.StartTime.Time()
	}
	return m, true
}

// HeldAt is the version alias pointed at at time t by the recorded moves
// ("" if none had set it yet).
func HeldAt(moves []Move, alias string, t time.Time) string {
	held := ""
	for _, m := range moves {
		if m.Alias == alias && m.Status == mlflow.RunFinished && !m.At.After(t) {
			held = m.To
		}
	}
	return held
}

// Drift compares the aliases' current versions with their last recorded
// moves, and describes each alias that was moved outside the lifecycle.
func (r *Registry) Drift(ctx context.Context, moves []Move) ([]string, error) {
	rm, err := r.c.GetRegisteredModel(ctx, r.model)
	if errors.Is(err, mlflow.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, r.reach(err)
	}
	var out []string
	for _, alias := range Aliases {
		current, _ := rm.AliasVersion(alias)
		var mine []Move
		for _, m := range moves {
			if m.Alias == alias {
				mine = append(mine, m)
			}
		}
		last, ok := lastFinished(mine)
		switch {
		case !ok && current != "":
			out = append(out, fmt.Sprintf("%s points at version %s, but no move of it is recorded", alias, current))
		case ok && last.To != current:
			out = append(out, fmt.Sprintf("%s points at version %s, but its last recorded move (%s) set it to %s: it was moved outside platformctl",
				alias, orNone(current), last.At.Format(time.RFC3339), last.To))
		}
	}
	return out, nil
}
