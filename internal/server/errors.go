package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// apiError is every error a client can get. Code is stable and machine
// readable; Message is for people. Status is the HTTP status: 4xx when the
// client is at fault, 5xx only for ours.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, if set, is sent as the Retry-After header (seconds).
	RetryAfter int `json:"-"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// errorFormat is how an error body is shaped: ours, or the Open Inference
// Protocol's ({"error": "message"}), which KServe clients parse.
type errorFormat int

const (
	formatAPI errorFormat = iota
	formatOIP
)

type apiErrorBody struct {
	Error *apiError `json:"error"`
}

type oipErrorBody struct {
	Error string `json:"error"`
}

// writeError is the one place error responses are written.
func writeError(w http.ResponseWriter, format errorFormat, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = errorf(http.StatusInternalServerError, "internal", "internal error")
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if format == formatOIP {
		encode(w, e.Status, oipErrorBody{Error: e.Message})
		return
	}
	encode(w, e.Status, apiErrorBody{Error: e})
}
