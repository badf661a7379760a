package server

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/ml-platform/platform/internal/feedback"
	"github.com/ml-platform/platform/internal/model"
)

// Open Inference Protocol v2, REST binding. The model takes one BYTES input
// tensor of UTF-8 texts and returns a BYTES "label" tensor and an FP32
// "confidence" tensor of the same shape. Errors use the protocol's shape,
// {"error": "message"}.

const (
	oipInputName     = "text"
	oipOutputLabel   = "label"
	oipOutputConf    = "confidence"
	oipPlatform      = "ml-inference_lexicon"
	oipDatatypeBytes = "BYTES"
	oipDatatypeFloat = "FP32"
)

type oipServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

func (s *server) handleOIPServerMetadata() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, oipServerMetadata{Name: s.cfg.Service, Version: s.cfg.Version, Extensions: []string{}})
	})
}

func (s *server) handleOIPLive() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]bool{"live": true})
	})
}

func (s *server) handleOIPReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, _ := s.ready()
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
		}
		encode(w, status, map[string]bool{"ready": ok})
	})
}

type oipTensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

type oipModelMetadata struct {
	Name     string              `json:"name"`
	Versions []string            `json:"versions"`
	Platform string              `json:"platform"`
	Inputs   []oipTensorMetadata `json:"inputs"`
	Outputs  []oipTensorMetadata `json:"outputs"`
}

// oipModel resolves {name} and optional {version} from the URL against the
// current set: the versions the request is about.
func (s *server) oipModel(r *http.Request) ([]string, *apiError) {
	set := s.models.Current()
	name := r.PathValue("name")
	v, e := oipVersion(set, name, r.PathValue("version"))
	if e != nil {
		return nil, e
	}
	if v != "" {
		return []string{v}, nil
	}
	return versionsNamed(set, name), nil
}

func (s *server) handleOIPModelMetadata() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		versions, e := s.oipModel(r)
		if e != nil {
			writeError(w, formatOIP, e)
			return
		}
		encode(w, http.StatusOK, oipModelMetadata{
			Name:     r.PathValue("name"),
			Versions: versions,
			Platform: oipPlatform,
			Inputs:   []oipTensorMetadata{{oipInputName, oipDatatypeBytes, []int64{-1}}},
			Outputs: []oipTensorMetadata{
				{oipOutputLabel, oipDatatypeBytes, []int64{-1}},
				{oipOutputConf, oipDatatypeFloat, []int64{-1}},
			},
		})
	})
}

func (s *server) handleOIPModelReady() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, e := s.oipModel(r); e != nil {
			writeError(w, formatOIP, e)
			return
		}
		ok, _ := s.ready()
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
		}
		encode(w, status, struct {
			Name  string `json:"name"`
			Ready bool   `json:"ready"`
		}{r.PathValue("name"), ok})
	})
}

type oipInferRequest struct {
	ID         string               `json:"id,omitempty"`
	Parameters map[string]any       `json:"parameters,omitempty"`
	Inputs     []oipInput           `json:"inputs"`
	Outputs    []oipRequestedOutput `json:"outputs,omitempty"`
}

type oipInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

type oipRequestedOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type oipOutput struct {
	Name     string  `json:"name"`
	Shape    []int64 `json:"shape"`
	Datatype string  `json:"datatype"`
	Data     any     `json:"data"`
}

type oipInferResponse struct {
	ModelName    string      `json:"model_name"`
	ModelVersion string      `json:"model_version"`
	ID           string      `json:"id,omitempty"`
	Parameters   *oipParams  `json:"parameters,omitempty"`
	Outputs      []oipOutput `json:"outputs"`
}

// oipParams are the response's parameters. OIP parameter values are
// strings, numbers or booleans, so the feedback tokens of the elements (in
// the label tensor's row-major order) are one string, joined by commas
// (base64url has none).
type oipParams struct {
	FeedbackTokens string `json:"feedback_tokens"`
}

// validate checks the request's structure; the texts are checked by texts().
func (q oipInferRequest) validate(Limits) *apiError {
	if len(q.Inputs) == 0 {
		return errorf(http.StatusBadRequest, "invalid_request", `"inputs" must hold one BYTES tensor named %q`, oipInputName)
	}
	for _, o := range q.Outputs {
		if o.Name != oipOutputLabel && o.Name != oipOutputConf {
			return errorf(http.StatusBadRequest, "invalid_request", "unknown output %q; this model has outputs %q and %q", o.Name, oipOutputLabel, oipOutputConf)
		}
	}
	return nil
}

// texts extracts the input tensor's strings (nested or flat, row-major) and
// checks them against the shape and limits.
func (q oipInferRequest) texts(l Limits) (oipInput, []string, *apiError) {
	in := q.Inputs[0]
	if len(q.Inputs) > 1 {
		i := slices.IndexFunc(q.Inputs, func(t oipInput) bool { return t.Name == oipInputName })
		if i < 0 {
			return in, nil, errorf(http.StatusBadRequest, "invalid_request", "%d inputs sent; this model takes one BYTES input named %q", len(q.Inputs), oipInputName)
		}
		in = q.Inputs[i]
	}
	if in.Datatype != oipDatatypeBytes {
		return in, nil, errorf(http.StatusBadRequest, "invalid_request", "input %q has datatype %q; this model takes BYTES", in.Name, in.Datatype)
	}
	want := int64(1)
	for _, d := range in.Shape {
		if d < 0 || d > int64(l.MaxBatch) {
			return in, nil, errorf(http.StatusBadRequest, "invalid_request", "input %q has shape %v; dimensions must be 0 to %d", in.Name, in.Shape, l.MaxBatch)
		}
		want *= d
	}
	if len(in.Shape) == 0 {
		return in, nil, errorf(http.StatusBadRequest, "invalid_request", "input %q needs a shape, e.g. [n]", in.Name)
	}
	var raw any
	if err := json.Unmarshal(in.Data, &raw); err != nil || raw == nil {
		return in, nil, errorf(http.StatusBadRequest, "invalid_request", "input %q: \"data\" must be an array of strings", in.Name)
	}
	var texts []string
	if !flattenStrings(raw, &texts, l.MaxBatch+1) {
		return in, nil, errorf(http.StatusBadRequest, "invalid_request", "input %q: BYTES data must be an array of strings", in.Name)
	}
	if int64(len(texts)) != want {
		return in, nil, errorf(http.StatusBadRequest, "invalid_request", "input %q: shape %v needs %d elements, data has %d", in.Name, in.Shape, want, len(texts))
	}
	if e := validateTexts("input "+in.Name, texts, l); e != nil {
		return in, nil, e
	}
	return in, texts, nil
}

// flattenStrings appends the strings of a (possibly nested) JSON array in
// row-major order; it fails on anything else or past max elements.
func flattenStrings(v any, out *[]string, max int) bool {
	switch x := v.(type) {
	case string:
		if len(*out) >= max {
			return false
		}
		*out = append(*out, x)
		return true
	case []any:
		for _, e := range x {
			if !flattenStrings(e, out, max) {
				return false
			}
		}
		return true
	}
	return false
}

func (s *server) handleOIPInfer() routedHandler {
	return func(w http.ResponseWriter, r *http.Request, rt routed) {
		req, e := decode[oipInferRequest](r, s.cfg.Limits, formatOIP)
		if e != nil {
			writeError(w, formatOIP, e)
			return
		}
		in, texts, e := req.texts(s.cfg.Limits)
		if e != nil {
			writeError(w, formatOIP, e)
			return
		}
		v := rt.version
		preds := make([]model.Prediction, len(texts))
		s.classify(r.Context(), v, texts, preds)
		labels := make([]string, len(preds))
		confs := make([]float32, len(preds))
		for i, p := range preds {
			labels[i], confs[i] = string(p.Sentiment), float32(p.Confidence)
		}
		resp := oipInferResponse{ModelName: v.Meta.Name, ModelVersion: v.Meta.Version, ID: req.ID}
		if s.keys != nil {
			tokens := make([]byte, 0, len(preds)*(feedback.MaxTokenLength/2))
			for i, p := range preds {
				if i > 0 {
					tokens = append(tokens, ',')
				}
				tokens = s.appendFeedbackToken(tokens, r, rt, i, p)
			}
			resp.Parameters = &oipParams{FeedbackTokens: string(tokens)}
		}
		wanted := func(name string) bool {
			return len(req.Outputs) == 0 || slices.ContainsFunc(req.Outputs, func(o oipRequestedOutput) bool { return o.Name == name })
		}
		if wanted(oipOutputLabel) {
			resp.Outputs = append(resp.Outputs, oipOutput{oipOutputLabel, in.Shape, oipDatatypeBytes, labels})
		}
		if wanted(oipOutputConf) {
			resp.Outputs = append(resp.Outputs, oipOutput{oipOutputConf, in.Shape, oipDatatypeFloat, confs})
		}
		encode(w, http.StatusOK, resp)
	}
}
