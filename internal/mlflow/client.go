// Package mlflow is a small client of MLflow's REST API (3.x): experiments,
// runs, the proxied artifact store (mlflow server --serve-artifacts), the
// model registry with aliases, and webhooks with their HMAC signatures. MLflow
// has no official Go client, and the generated ones lag its API, so this one
// covers exactly what the platform's model lifecycle uses, over net/http.
//
// Every call takes a context; JSON calls also get a per-call timeout
// (WithTimeout), artifact transfers only the caller's context, since their
// length depends on the file. Errors are typed: *APIError carries MLflow's
// error_code and message and matches ErrNotFound, ErrAlreadyExists and
// ErrInvalidArgument with errors.Is; *TransportError is a request that got no
// response (server down, connection reset); IsRetryable tells the two kinds
// of transient failure from the rest. The client keeps no state besides its
// configuration and is safe for concurrent use.
//
// The REST paths and fields follow MLflow 3.17.2's server
// (mlflow/server/handlers.py and the protobuf messages in mlflow/protos), as
// documented at https://mlflow.org/docs/latest/api_reference/rest-api.html;
// the tests run every call against that real server (internal/mlflowtest).
package mlflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one MLflow tracking server.
type Client struct {
	base    *url.URL // the tracking URI; its path is a prefix for every endpoint
	http    *http.Client
	timeout time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc. The default
// is a client of its own (not http.DefaultClient) with connection and
// response-header timeouts but no overall timeout, which would cut artifact
// downloads short.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithTimeout bounds each JSON API call (default 30 s; 0 for none). The
// caller's context can only shorten it. Artifact uploads and downloads are
// bounded by the caller's context alone.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// DefaultTimeout is the per-call timeout of JSON API calls.
const DefaultTimeout = 30 * time.Second

// New returns a client of the tracking server at trackingURI
// (http://host:port, with an optional path prefix when MLflow is served
// below one).
func New(trackingURI string, opts ...Option) (*Client, error) {
	u, err := url.Parse(trackingURI)
	if err != nil {
		return nil, fmt.Errorf("mlflow: tracking URI %q: %w", trackingURI, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mlflow: tracking URI %q: want http://host:port or https://host[:port]", trackingURI)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("mlflow: tracking URI %q: a query, fragment or user info is not supported", trackingURI)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: newTransport()}
	}
	return c, nil
}

// TrackingURI is the server's address as given to New (without a trailing
// slash).
func (c *Client) TrackingURI() string { return c.base.String() }

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
	}
}

// endpoint is the URL of an API path (given unescaped, segment by segment
// joined by the caller) below the tracking URI.
func (c *Client) endpoint(path string) *url.URL {
	u := *c.base
	u.Path = c.base.Path + path
	return &u
}

// get calls a GET endpoint with query parameters and decodes the JSON
// answer into out.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	u := c.endpoint(path)
	u.RawQuery = query.Encode()
	return c.callJSON(ctx, http.MethodGet, u, nil, out)
}

// send calls a POST, PATCH or DELETE endpoint with a JSON body, as MLflow's
// own client does for every method but GET.
func (c *Client) send(ctx context.Context, method, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode the %s %s request: %w", method, path, err)
	}
	return c.callJSON(ctx, method, c.endpoint(path), body, out)
}

func (c *Client) callJSON(ctx context.Context, method string, u *url.URL, body []byte, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return fmt.Errorf("build the %s %s request: %w", method, u.Path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONResponse+1))
	if err != nil {
		return &TransportError{Method: method, URL: u.Redacted(), Err: fmt.Errorf("read the response: %w", err)}
	}
	if len(data) > maxJSONResponse {
		return fmt.Errorf("%s %s: response larger than %d bytes", method, u.Path, maxJSONResponse)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode the response (%s): %w", method, u.Path, snippet(data), err)
	}
	return nil
}

// maxJSONResponse bounds what the client reads of one JSON answer (a search
// page of 1000 model versions with tags is a few MB).
const maxJSONResponse = 64 << 20

// do sends req; a response outside 2xx becomes an *APIError (its body
// consumed and closed), no response a *TransportError.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("User-Agent", "ml-platform-mlflow-go")
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error repeats method and URL; keep its cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, &TransportError{Method: req.Method, URL: req.URL.Redacted(), Err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	apiErr := &APIError{Method: req.Method, Path: req.URL.Path, StatusCode: resp.StatusCode}
	var e struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &e) == nil && e.Code != "" {
		apiErr.Code, apiErr.Message = e.Code, e.Message
	} else {
		apiErr.Message = snippet(data)
	}
	return nil, apiErr
}

// snippet is the start of a body for an error message, on one line.
func snippet(data []byte) string {
	s := strings.Join(strings.Fields(string(data)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
