package server

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ml-platform/platform/internal/model"
	"github.com/ml-platform/platform/internal/registry"
)

type predictRequest struct {
	Text *string `json:"text"`
}

func (p predictRequest) validate(l Limits) *apiError {
	if p.Text == nil {
		return errorf(http.StatusBadRequest, "missing_field", `field "text" is required`)
	}
	return validateText("text", *p.Text, l)
}

type batchRequest struct {
	Texts *[]string `json:"texts"`
}

func (b batchRequest) validate(l Limits) *apiError {
	if b.Texts == nil {
		return errorf(http.StatusBadRequest, "missing_field", `field "texts" is required`)
	}
	return validateTexts("texts", *b.Texts, l)
}

func validateTexts(field string, texts []string, l Limits) *apiError {
	if n := len(texts); n < 1 || n > l.MaxBatch {
		return errorf(http.StatusUnprocessableEntity, "invalid_batch_size", "%s must hold 1 to %d texts, got %d", field, l.MaxBatch, n)
	}
	for i, t := range texts {
		if e := validateText(fmt.Sprintf("%s[%d]", field, i), t, l); e != nil {
			return e
		}
	}
	return nil
}

func validateText(field, text string, l Limits) *apiError {
	if strings.TrimSpace(text) == "" {
		return errorf(http.StatusUnprocessableEntity, "empty_text", "%s must not be empty", field)
	}
	if n := utf8.RuneCountInString(text); n > l.MaxTextLength {
		return errorf(http.StatusUnprocessableEntity, "text_too_long", "%s has %d characters; the limit is %d", field, n, l.MaxTextLength)
	}
	if !utf8.ValidString(text) {
		// JSON escapes cannot produce invalid UTF-8, but OIP BYTES may.
		return errorf(http.StatusBadRequest, "invalid_utf8", "%s is not valid UTF-8", field)
	}
	return nil
}

type predictResponse struct {
	Text             string  `json:"text"`
	Sentiment        string  `json:"sentiment"`
	Confidence       float64 `json:"confidence"`
	ProcessingTimeMS float64 `json:"processing_time_ms"`
	Timestamp        string  `json:"timestamp"`
	ModelVersion     string  `json:"model_version"`
	// FeedbackToken identifies this prediction to POST /feedback; absent
	// when feedback is disabled.
	FeedbackToken string `json:"feedback_token,omitempty"`
}

type batchResponse struct {
	Predictions           []predictResponse `json:"predictions"`
	TotalProcessingTimeMS float64           `json:"total_processing_time_ms"`
	ModelVersion          string            `json:"model_version"`
}

func (s *server) handlePredict() routedHandler {
	return func(w http.ResponseWriter, r *http.Request, rt routed) {
		start := time.Now()
		req, e := decode[predictRequest](r, s.cfg.Limits, formatAPI)
		if e != nil {
			writeError(w, formatAPI, e)
			return
		}
		texts := [1]string{*req.Text}
		var preds [1]model.Prediction
		s.classify(r.Context(), rt.version, texts[:], preds[:])
		out := s.response(texts[0], preds[0], rt.version, start)
		out.FeedbackToken = s.feedbackToken(r, rt, 0, preds[0])
		encode(w, http.StatusOK, out)
	}
}

func (s *server) handlePredictBatch() routedHandler {
	return func(w http.ResponseWriter, r *http.Request, rt routed) {
		start := time.Now()
		req, e := decode[batchRequest](r, s.cfg.Limits, formatAPI)
		if e != nil {
			writeError(w, formatAPI, e)
			return
		}
		v := rt.version
		texts := *req.Texts
		preds := make([]model.Prediction, len(texts))
		s.classify(r.Context(), v, texts, preds)
		out := batchResponse{Predictions: make([]predictResponse, len(texts)), ModelVersion: v.Meta.Version}
		for i := range texts {
			out.Predictions[i] = s.response(texts[i], preds[i], v, start)
			out.Predictions[i].FeedbackToken = s.feedbackToken(r, rt, i, preds[i])
		}
		out.TotalProcessingTimeMS = millis(time.Since(start))
		encode(w, http.StatusOK, out)
	}
}

func (s *server) response(text string, p model.Prediction, v *registry.Loaded, start time.Time) predictResponse {
	return predictResponse{
		Text:             text,
		Sentiment:        string(p.Sentiment),
		Confidence:       p.Confidence,
		ProcessingTimeMS: millis(time.Since(start)),
		Timestamp:        s.now().UTC().Format(time.RFC3339Nano),
		ModelVersion:     v.Meta.Version,
	}
}

func millis(d time.Duration) float64 {
	return math.Round(float64(d.Nanoseconds())/1e3) / 1e3
}

// classify runs the model over texts in three traced stages: preprocess
// (tokenize), inference (score) and postprocess (round, count). It records
// the model's time per text.
func (s *server) classify(ctx context.Context, v *registry.Loaded, texts []string, out []model.Prediction) {
	version := v.Meta.Version
	m := v.Model
	tokens := make([][]string, len(texts))
	modelTime := make([]time.Duration, len(texts))

	_, span := s.stage(ctx, "preprocess")
	if span.IsRecording() {
		n := 0
		for _, t := range texts {
			n += utf8.RuneCountInString(t)
		}
		span.SetAttributes(attribute.Int("text_length", n), attribute.Int("batch_size", len(texts)),
			attribute.String("model.version", version))
	}
	for i, t := range texts {
		t0 := time.Now()
		tokens[i] = m.Tokenize(t)
		modelTime[i] = time.Since(t0)
	}
	span.End()

	_, span = s.stage(ctx, "inference")
	for i := range texts {
		t0 := time.Now()
		out[i] = m.Score(tokens[i])
		modelTime[i] += time.Since(t0)
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("model.version", version))
	}
	span.End()

	_, span = s.stage(ctx, "postprocess")
	hist := s.metrics.ModelDuration.WithLabelValues(version)
	for i := range out {
		out[i] = model.Postprocess(out[i])
		hist.Observe(modelTime[i].Seconds())
		s.metrics.Predictions.WithLabelValues(version, string(out[i].Sentiment)).Inc()
	}
	if span.IsRecording() {
		attrs := []attribute.KeyValue{attribute.String("model.version", version)}
		if len(out) == 1 {
			attrs = append(attrs, attribute.String("sentiment", string(out[0].Sentiment)),
				attribute.Float64("confidence", out[0].Confidence))
		}
		span.SetAttributes(attrs...)
	}
	span.End()
}

// stage starts a child span for a pipeline stage, but only when the request
// is being recorded: for the 90% of requests that are not sampled, three
// non-recording spans would cost allocations and random ids for nothing.
func (s *server) stage(ctx context.Context, name string) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noopSpan
	}
	return s.tracer.Start(ctx, name)
}

var noopSpan = trace.SpanFromContext(context.Background())
