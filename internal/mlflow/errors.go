package mlflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Kinds of failure, matched with errors.Is against any error the Client
// returns.
var (
	// ErrNotFound: the experiment, run, model, version, alias, artifact or
	// webhook does not exist (MLflow's RESOURCE_DOES_NOT_EXIST, and its 400
	// for an unknown alias, see GetModelVersionByAlias).
	ErrNotFound = errors.New("does not exist")
	// ErrAlreadyExists: MLflow's RESOURCE_ALREADY_EXISTS.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: MLflow's INVALID_PARAMETER_VALUE, or a request
	// the client refused to send (an empty name, an artifact path that
	// climbs out of its root, an unknown run status).
	ErrInvalidArgument = errors.New("invalid argument")
)

// MLflow's error codes (databricks.proto ErrorCode) that the client tells
// apart.
const (
	codeNotFound        = "RESOURCE_DOES_NOT_EXIST"
	codeAlreadyExists   = "RESOURCE_ALREADY_EXISTS"
	codeInvalidArgument = "INVALID_PARAMETER_VALUE"
)

// APIError is an HTTP response outside 2xx. MLflow answers its REST API's
// errors with JSON {"error_code": ..., "message": ...}; Code and Message
// carry them. A body that is not that JSON (an HTML 404 for an unknown path,
// a proxy's 502) leaves Code empty and puts the start of the body in
// Message.
type APIError struct {
	Method     string // GET, POST, ...
	Path       string // /api/2.0/mlflow/registered-models/get
	StatusCode int
	Code       string // MLflow's error_code, e.g. RESOURCE_DOES_NOT_EXIST
	Message    string

	// missing marks a response MLflow gives for a missing resource under a
	// code other than RESOURCE_DOES_NOT_EXIST.
	missing bool
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.StatusCode, code, e.Message)
}

// Is matches ErrNotFound, ErrAlreadyExists and ErrInvalidArgument by
// MLflow's error code.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == codeNotFound || e.missing
	case ErrAlreadyExists:
		return e.Code == codeAlreadyExists
	case ErrInvalidArgument:
		return e.Code == codeInvalidArgument && !e.missing
	}
	return false
}

// Retryable reports whether the same request may succeed later: the status
// codes MLflow's own Python client retries (408, 429, 500, 502, 503, 504;
// mlflow/utils/request_utils.py _TRANSIENT_FAILURE_RESPONSE_CODES).
func (e *APIError) Retryable() bool {
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// TransportError is a request that got no complete HTTP response: the
// server is down or unreachable, the connection broke, or the per-call
// timeout passed.
type TransportError struct {
	Method string
	URL    string
	Err    error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// IsRetryable reports whether err is worth retrying: a transport failure
// (unless the caller's context was canceled) or a retryable APIError. An
// error from a request the server refused (bad input, missing resource) is
// not: the same request fails the same way. The client itself never
// retries, because not every call is idempotent (CreateRun twice makes two
// runs); the caller chooses its policy.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var api *APIError
	if errors.As(err, &api) {
		return api.Retryable()
	}
	var transport *TransportError
	return errors.As(err, &transport)
}

// RegistrationFailedError is a model version whose status became
// FAILED_REGISTRATION while WaitModelVersionReady waited for READY.
type RegistrationFailedError struct {
	Name, Version, StatusMessage string
}

func (e *RegistrationFailedError) Error() string {
	return fmt.Sprintf("model %q version %s: registration failed: %s", e.Name, e.Version, e.StatusMessage)
}
