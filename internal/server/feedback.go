package server

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/ml-platform/platform/internal/feedback"
	"github.com/ml-platform/platform/internal/model"
	"github.com/ml-platform/platform/internal/telemetry"
)

// Feedback: every prediction carries a feedback_token (see package
// feedback); POST /feedback echoes it with the user's verdict, the true
// label, and model_feedback_total counts whether the prediction was right,
// for the version that made it. Any replica can take the feedback: they
// share the signing key.
//
// What each request gets:
//
//	200 recorded             counted (the body says for which version and outcome)
//	404 feedback_disabled    the server runs without --feedback-key-file
//	409 duplicate_feedback   this replica already counted this token (not counted again)
//	400 invalid_token        not a token this service issues
//	403 invalid_signature    tampered, or signed with a key this server does not hold
//	410 token_expired        older than --feedback-token-ttl
//	400 token_not_yet_valid  issued further in the future than the allowed clock skew
//	422 ...                  a body that is not {"feedback_token": "...", "label": "..."}
//	503 feedback_store_full  the replay store is full: retry later
//
// A replayed token is counted at most once per replica within its lifetime
// (package feedback's Dedup); with R replicas, at most R times.

type feedbackRequest struct {
	Token *string `json:"feedback_token"`
	Label *string `json:"label"`
}

func (f feedbackRequest) validate(Limits) *apiError {
	switch {
	case f.Token == nil:
		return errorf(http.StatusBadRequest, "missing_field", `field "feedback_token" is required: the feedback_token of the prediction`)
	case strings.TrimSpace(*f.Token) == "":
		return errorf(http.StatusUnprocessableEntity, "empty_token", `field "feedback_token" must not be empty`)
	case f.Label == nil:
		return errorf(http.StatusBadRequest, "missing_field", `field "label" is required: the true label, one of %s`, labelList())
	case !slices.Contains(model.Labels, model.Sentiment(*f.Label)):
		return errorf(http.StatusUnprocessableEntity, "invalid_label", `field "label" is %q; it must be one of %s`, *f.Label, labelList())
	}
	return nil
}

func labelList() string {
	var out []string
	for _, l := range model.Labels {
		out = append(out, string(l))
	}
	return strings.Join(out, ", ")
}

type feedbackResponse struct {
	Status       string `json:"status"` // "recorded"
	ModelVersion string `json:"model_version"`
	Predicted    string `json:"predicted"`
	Label        string `json:"label"`
	Outcome      string `json:"outcome"` // correct or incorrect
	Routing      string `json:"routing"` // split or pinned
	RequestID    string `json:"request_id"`
}

func (s *server) handleFeedback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.keys == nil {
			writeError(w, formatAPI, errorf(http.StatusNotFound, "feedback_disabled",
				"feedback is disabled on this server: it was started without --feedback-key-file, and its predictions carry no feedback_token"))
			return
		}
		req, e := decode[feedbackRequest](r, s.cfg.Limits, formatAPI)
		if e != nil {
			writeError(w, formatAPI, e)
			return
		}
		now := s.now()
		fb := s.cfg.Feedback
		c, id, err := s.keys.Verify(*req.Token, now, fb.TokenTTL, fb.ClockSkew)
		if err != nil {
			e, reason := tokenError(err)
			s.metrics.FeedbackRefused.WithLabelValues(reason).Inc()
			writeError(w, formatAPI, e)
			return
		}
		replay, err := s.replays.Add(id, c.IssuedAt, now)
		switch {
		case errors.Is(err, feedback.ErrFull):
			s.metrics.FeedbackRefused.WithLabelValues("store_full").Inc()
			e := errorf(http.StatusServiceUnavailable, "feedback_store_full", "this replica remembers %d feedback tokens, its limit, and cannot check this one for a replay; retry later", fb.ReplayEntries)
			e.RetryAfter = 60
			writeError(w, formatAPI, e)
			return
		case replay:
			s.metrics.FeedbackRefused.WithLabelValues("replay").Inc()
			writeError(w, formatAPI, errorf(http.StatusConflict, "duplicate_feedback",
				"feedback for this prediction (request %s, item %d) was already counted; it is not counted again", c.RequestID, c.Index))
			return
		}
		outcome, routing := "incorrect", "split"
		if c.Label == *req.Label {
			outcome = "correct"
		}
		if c.Pinned {
			routing = "pinned"
		}
		s.metrics.Feedback.WithLabelValues(c.Version, outcome, routing).Inc()
		encode(w, http.StatusOK, feedbackResponse{Status: "recorded", ModelVersion: c.Version, Predicted: c.Label,
			Label: *req.Label, Outcome: outcome, Routing: routing, RequestID: c.RequestID})
	})
}

// tokenError maps a Verify error to the client's error and the refusal
// reason counted in model_feedback_refused_total.
func tokenError(err error) (*apiError, string) {
	switch {
	case errors.Is(err, feedback.ErrSignature):
		return errorf(http.StatusForbidden, "invalid_signature", "the feedback_token's signature does not verify: it was changed, or it was not issued by this service"), "bad_signature"
	case errors.Is(err, feedback.ErrExpired):
		return errorf(http.StatusGone, "token_expired", "%v", err), "expired"
	case errors.Is(err, feedback.ErrNotYetValid):
		return errorf(http.StatusBadRequest, "token_not_yet_valid", "%v", err), "not_yet_valid"
	}
	return errorf(http.StatusBadRequest, "invalid_token", "%v; send the feedback_token of a prediction as it was returned", err), "invalid_token"
}

// feedbackToken is the token of item i of a prediction ("" when feedback is
// disabled).
func (s *server) feedbackToken(r *http.Request, rt routed, i int, p model.Prediction) string {
	if s.keys == nil {
		return ""
	}
	var buf [feedback.MaxTokenLength]byte
	return string(s.appendFeedbackToken(buf[:0], r, rt, i, p))
}

func (s *server) appendFeedbackToken(dst []byte, r *http.Request, rt routed, i int, p model.Prediction) []byte {
	ctx := r.Context()
	out, err := s.keys.Append(dst, feedback.Claims{
		RequestID: telemetry.RequestID(ctx),
		Index:     i,
		Version:   rt.version.Meta.Version,
		Label:     string(p.Sentiment),
		Pinned:    rt.pinned,
		IssuedAt:  s.now(),
	})
	if err != nil {
		// Versions, labels and request ids are bounded well below the
		// token's limits; a failure is a bug, and costs only the token.
		s.log.LogAttrs(ctx, slog.LevelError, "feedback token", slog.Any("err", err))
		return dst
	}
	return out
}
