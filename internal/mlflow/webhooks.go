package mlflow

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MLflow 3 (experimental in 3.17.2) calls webhooks on model registry
// events. The server signs each delivery, following the Standard Webhooks
// scheme (mlflow/webhooks/delivery.py in 3.17.2):
//
//	X-MLflow-Delivery-Id: <uuid4>
//	X-MLflow-Timestamp:   <unix seconds>
//	X-MLflow-Signature:   v1,<base64 HMAC-SHA256(secret, delivery-id "." timestamp "." body)>
//
// where secret is the webhook's secret as UTF-8 bytes and body the exact
// request body, JSON {"entity", "action", "timestamp", "data"}. Only a SQL
// backend store has webhooks, and the server stores secrets encrypted with
// MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY, which must not change across
// restarts (hack/mlflow.sh keeps it with the data). By default MLflow calls
// only https URLs resolving to public addresses; hack/mlflow.sh allows http
// and loopback for local listeners.

// The headers of a webhook delivery.
const (
	HeaderWebhookDeliveryID = "X-MLflow-Delivery-Id"
	HeaderWebhookTimestamp  = "X-MLflow-Timestamp"
	HeaderWebhookSignature  = "X-MLflow-Signature"
)

// WebhookEvent is an entity and an action, as the webhook API names them
// (upper case: MODEL_VERSION_ALIAS, CREATED).
type WebhookEvent struct {
	Entity string `json:"entity"`
	Action string `json:"action"`
}

// String is the event as MLflow's documentation names it:
// model_version_alias.created.
func (e WebhookEvent) String() string {
	return strings.ToLower(e.Entity) + "." + strings.ToLower(e.Action)
}

// The model registry events the lifecycle listens to.
var (
	EventRegisteredModelCreated = WebhookEvent{"REGISTERED_MODEL", "CREATED"}
	EventModelVersionCreated    = WebhookEvent{"MODEL_VERSION", "CREATED"}
	EventModelVersionTagSet     = WebhookEvent{"MODEL_VERSION_TAG", "SET"}
	EventAliasCreated           = WebhookEvent{"MODEL_VERSION_ALIAS", "CREATED"} // also sent when an alias moves
	EventAliasDeleted           = WebhookEvent{"MODEL_VERSION_ALIAS", "DELETED"}
)

// WebhookStatus says whether MLflow calls a webhook.
type WebhookStatus string

// The webhook states.
const (
	WebhookActive   WebhookStatus = "ACTIVE"
	WebhookDisabled WebhookStatus = "DISABLED"
)

// Webhook is a registered webhook. MLflow never returns its secret.
type Webhook struct {
	ID                   string         `json:"webhook_id"`
	Name                 string         `json:"name"`
	Description          string         `json:"description"`
	URL                  string         `json:"url"`
	Events               []WebhookEvent `json:"events"`
	Status               WebhookStatus  `json:"status"`
	CreationTimestamp    UnixMillis     `json:"creation_timestamp"`
	LastUpdatedTimestamp UnixMillis     `json:"last_updated_timestamp"`
}

// CreateWebhookRequest describes a new webhook. Events must use the
// upper-case names (the Event* values): MLflow 3.17.2 answers lower-case
// ones with an HTML 500.
type CreateWebhookRequest struct {
	Name        string
	URL         string
	Events      []WebhookEvent
	Description string
	Secret      string        // signs deliveries; "" sends them unsigned
	Status      WebhookStatus // "" is ACTIVE
}

// CreateWebhook registers a webhook.
func (c *Client) CreateWebhook(ctx context.Context, r CreateWebhookRequest) (Webhook, error) {
	for _, e := range r.Events {
		if e.Entity != strings.ToUpper(e.Entity) || e.Action != strings.ToUpper(e.Action) {
			return Webhook{}, fmt.Errorf("mlflow: create webhook %q: %w: event %s/%s: use the upper-case names, e.g. mlflow.EventAliasCreated", r.Name, ErrInvalidArgument, e.Entity, e.Action)
		}
	}
	in := struct {
		Name        string         `json:"name"`
		URL         string         `json:"url"`
		Events      []WebhookEvent `json:"events"`
		Description string         `json:"description,omitempty"`
		Secret      string         `json:"secret,omitempty"`
		Status      WebhookStatus  `json:"status,omitempty"`
	}{r.Name, r.URL, r.Events, r.Description, r.Secret, r.Status}
	var out struct {
		Webhook Webhook `json:"webhook"`
	}
	if err := c.send(ctx, "POST", "/api/2.0/mlflow/webhooks", in, &out); err != nil {
		return Webhook{}, fmt.Errorf("mlflow: create webhook %q for %s: %w", r.Name, r.URL, err)
	}
	return out.Webhook, nil
}

// GetWebhook returns a webhook by id.
func (c *Client) GetWebhook(ctx context.Context, id string) (Webhook, error) {
	var out struct {
		Webhook Webhook `json:"webhook"`
	}
	if err := c.get(ctx, "/api/2.0/mlflow/webhooks/"+url.PathEscape(id), nil, &out); err != nil {
		return Webhook{}, fmt.Errorf("mlflow: get webhook %s: %w", id, err)
	}
	return out.Webhook, nil
}

// WebhooksPage is one page of webhooks; NextPageToken is "" on the last.
type WebhooksPage struct {
	Webhooks      []Webhook `json:"webhooks"`
	NextPageToken string    `json:"next_page_token"`
}

// ListWebhooks returns one page of at most maxResults webhooks (0: MLflow's
// default, 100; at most 1000).
func (c *Client) ListWebhooks(ctx context.Context, maxResults int, pageToken string) (WebhooksPage, error) {
	var out WebhooksPage
	if err := c.get(ctx, "/api/2.0/mlflow/webhooks", searchQuery("", nil, maxResults, pageToken), &out); err != nil {
		return WebhooksPage{}, fmt.Errorf("mlflow: list webhooks: %w", err)
	}
	return out, nil
}

// DeleteWebhook removes a webhook (ErrNotFound if there is none with that
// id).
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	if err := c.send(ctx, "DELETE", "/api/2.0/mlflow/webhooks/"+url.PathEscape(id), struct{}{}, nil); err != nil {
		return fmt.Errorf("mlflow: delete webhook %s: %w", id, err)
	}
	return nil
}

// WebhookTestResult is what the server saw when it sent a test delivery.
type WebhookTestResult struct {
	Success        bool   `json:"success"`
	ResponseStatus int    `json:"response_status"`
	ResponseBody   string `json:"response_body"`
	ErrorMessage   string `json:"error_message"`
}

// TestWebhook makes the server send an example payload of event (nil: the
// webhook's first event) to the webhook now and report the outcome.
func (c *Client) TestWebhook(ctx context.Context, id string, event *WebhookEvent) (WebhookTestResult, error) {
	in := struct {
		Event *WebhookEvent `json:"event,omitempty"`
	}{event}
	var out struct {
		Result WebhookTestResult `json:"result"`
	}
	if err := c.send(ctx, "POST", "/api/2.0/mlflow/webhooks/"+url.PathEscape(id)+"/test", in, &out); err != nil {
		return WebhookTestResult{}, fmt.Errorf("mlflow: test webhook %s: %w", id, err)
	}
	return out.Result, nil
}

// ErrWebhookUnverified is a delivery whose signature, timestamp or headers
// do not check out; the listener should answer it 401 and ignore it.
var ErrWebhookUnverified = errors.New("mlflow webhook delivery not verified")

// VerifyWebhook checks a delivery: its signature over the headers' delivery
// id and timestamp and the body, made with secret, and its timestamp within
// maxAge of now in either direction (replay protection; Standard Webhooks
// suggests 5 minutes). Any failure wraps ErrWebhookUnverified.
func VerifyWebhook(secret string, h http.Header, body []byte, now time.Time, maxAge time.Duration) error {
	id, ts, sigs := h.Get(HeaderWebhookDeliveryID), h.Get(HeaderWebhookTimestamp), h.Get(HeaderWebhookSignature)
	for _, hv := range [][2]string{{HeaderWebhookDeliveryID, id}, {HeaderWebhookTimestamp, ts}, {HeaderWebhookSignature, sigs}} {
		if hv[1] == "" {
			return fmt.Errorf("%w: no %s header", ErrWebhookUnverified, hv[0])
		}
	}
	if secret == "" {
		return fmt.Errorf("%w: no secret to check the signature with", ErrWebhookUnverified)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrWebhookUnverified, HeaderWebhookTimestamp, ts)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > maxAge || age < -maxAge {
		return fmt.Errorf("%w: timestamp %s is %s from now, more than %s", ErrWebhookUnverified, time.Unix(sec, 0).UTC().Format(time.RFC3339), age.Round(time.Second), maxAge)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	// A space-separated list of "version,signature" (Standard Webhooks lets
	// a sender send several, e.g. while rotating secrets); one v1 match is
	// enough.
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature in %s matches the body", ErrWebhookUnverified, HeaderWebhookSignature)
}

// WebhookDelivery is a verified delivery.
type WebhookDelivery struct {
	ID        string          `json:"-"`      // X-MLflow-Delivery-Id, the same on retries of one delivery
	Entity    string          `json:"entity"` // lower case: model_version_alias
	Action    string          `json:"action"` // lower case: created
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Event is the delivery's event, comparable with the Event* values.
func (d WebhookDelivery) Event() WebhookEvent {
	return WebhookEvent{Entity: strings.ToUpper(d.Entity), Action: strings.ToUpper(d.Action)}
}

// AliasEventData is the data of model_version_alias events; Version is ""
// for deleted.
type AliasEventData struct {
	Name    string `json:"name"`
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// maxWebhookBody bounds what ReadWebhook reads of a delivery.
const maxWebhookBody = 1 << 20

// ReadWebhook reads, verifies (VerifyWebhook) and decodes a delivery
// received by an HTTP handler.
func ReadWebhook(r *http.Request, secret string, now time.Time, maxAge time.Duration) (WebhookDelivery, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
	if err != nil {
		return WebhookDelivery{}, fmt.Errorf("read the webhook delivery: %w", err)
	}
	if len(body) > maxWebhookBody {
		return WebhookDelivery{}, fmt.Errorf("%w: body larger than %d bytes", ErrWebhookUnverified, maxWebhookBody)
	}
	if err := VerifyWebhook(secret, r.Header, body, now, maxAge); err != nil {
		return WebhookDelivery{}, err
	}
	var d WebhookDelivery
	if err := json.Unmarshal(body, &d); err != nil {
		return WebhookDelivery{}, fmt.Errorf("decode the webhook delivery %s: %w", r.Header.Get(HeaderWebhookDeliveryID), err)
	}
	d.ID = r.Header.Get(HeaderWebhookDeliveryID)
	return d, nil
}
