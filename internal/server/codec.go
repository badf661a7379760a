package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"unicode/utf8"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encode writes v as JSON with the given status. HTML characters are not
// escaped: the API echoes texts and they should come back as sent.
func encode[T any](w http.ResponseWriter, status int, v T) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own types are encoded here; failing is a bug.
		http.Error(w, `{"error":{"code":"internal","message":"encode response"}}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// validator is implemented by request types that check themselves after
// decoding.
type validator interface {
	validate(limits Limits) *apiError
}

// decode reads a JSON request body of at most limits.MaxBodyBytes into a T and
// validates it. Every failure is a 4xx apiError that says what was wrong.
//
// A body that cannot be read as a valid request (malformed JSON, wrong types,
// a missing field, invalid UTF-8) is a 400 in the Open Inference Protocol,
// as KServe answers it, and a 422 on the seed API, as the original FastAPI
// service answered it: its clients rely on that, so the remapping lives here,
// in one place.
func decode[T validator](r *http.Request, limits Limits, format errorFormat) (T, *apiError) {
	v, e := decodeBody[T](r, limits)
	if e != nil && format == formatAPI && e.Status == http.StatusBadRequest {
		e.Status = http.StatusUnprocessableEntity
	}
	return v, e
}

func decodeBody[T validator](r *http.Request, limits Limits) (T, *apiError) {
	var v T
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !isJSONSuffix(mt)) {
			return v, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type",
				"Content-Type %q is not supported; send application/json", ct)
		}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		bufPool.Put(buf)
	}()
	body := http.MaxBytesReader(nil, r.Body, limits.MaxBodyBytes)
	if _, err := buf.ReadFrom(body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return v, errorf(http.StatusRequestEntityTooLarge, "body_too_large",
				"request body exceeds %d bytes", limits.MaxBodyBytes)
		}
		return v, errorf(http.StatusBadRequest, "unreadable_body", "could not read request body: %v", err)
	}
	data := buf.Bytes()
	if len(bytes.TrimSpace(data)) == 0 {
		return v, errorf(http.StatusBadRequest, "invalid_json", "request body is empty; send a JSON object")
	}
	if !utf8.Valid(data) {
		return v, errorf(http.StatusBadRequest, "invalid_utf8", "request body is not valid UTF-8")
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, jsonError(err)
	}
	if e := v.validate(limits); e != nil {
		return v, e
	}
	return v, nil
}

func isJSONSuffix(mt string) bool {
	return len(mt) > 5 && mt[len(mt)-5:] == "+json"
}

func jsonError(err error) *apiError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return errorf(http.StatusBadRequest, "invalid_json", "malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return errorf(http.StatusBadRequest, "invalid_json", "request body must be a JSON object, got %s", typ.Value)
		}
		return errorf(http.StatusBadRequest, "invalid_field", "field %q must be %s, got %s", field, jsonTypeName(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "invalid_json", "malformed JSON: unexpected end of input")
	default:
		return errorf(http.StatusBadRequest, "invalid_json", "malformed JSON: %v", err)
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "a boolean"
	default:
		return "a number"
	}
}
