package dsm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/dsm/front"
)

// The controller's side of the contract (service/internal/api): GET /healthz answers without
// authentication; everything else wants the front secret.
const (
	HeaderFrontSecret = front.HeaderFrontSecret
	HeaderUser        = front.HeaderUser
	HeaderLang        = front.HeaderLang
	HeaderCSRF        = "X-Forgebox-CSRF"
)

// Controller is a client of the controller's HTTP API for the lifecycle scripts.
type Controller struct {
	BaseURL string
	DataDir string // where front.secret is
	User    string // who asks, for the controller's activity feed
	HTTP    *http.Client
}

// NewController makes a client for env, reading the data dir from the config (the controller
// writes front.secret there) and falling back to the DSM default.
func NewController(env Env, user string) *Controller {
	dataDir := env.DataDir
	if c, err := config.Load(env.ConfigFile); err == nil && c.Stack.DataDir != "" {
		dataDir = c.Stack.DataDir
	}
	return &Controller{BaseURL: env.ControllerURL, DataDir: dataDir, User: user,
		HTTP: &http.Client{Timeout: 20 * time.Second}}
}

// Operation is the controller's record of a long-running change (api.Operation).
type Operation struct {
	ID    string `json:"id"`
	Op    string `json:"op"`
	State string `json:"state"` // running, succeeded, failed
	Error string `json:"error,omitempty"`
}

// APIError is an error answer of the controller: {"error": {"code", "message"}}.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("controller answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Healthy asks GET /healthz, the liveness check that needs no secret.
func (c *Controller) Healthy(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %s", resp.Status)
	}
	return nil
}

// WaitHealthy polls /healthz until it answers or ctx ends.
func (c *Controller) WaitHealthy(ctx context.Context) error {
	for {
		attempt, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := c.Healthy(attempt)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the controller did not answer at %s: %w", c.BaseURL, err)
		case <-time.After(time.Second):
		}
	}
}

// FrontSecret reads the shared secret the controller wrote into its data dir.
func FrontSecret(dataDir string) (string, error) { return front.FrontSecret(dataDir) }

// Start asks for a stack operation (POST api/v1/<op>, e.g. up or down). The controller answers
// 202 with the operation and runs it in the background.
func (c *Controller) Start(ctx context.Context, op string) (Operation, error) {
	var out struct {
		Operation Operation `json:"operation"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/"+op, &out); err != nil {
		return Operation{}, err
	}
	return out.Operation, nil
}

// Operation reads one operation's state (GET api/v1/operations/<id>).
func (c *Controller) Operation(ctx context.Context, id string) (Operation, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/v1/operations/"+id, &raw); err != nil {
		return Operation{}, err
	}
	// Either the operation itself or {"operation": {...}}.
	var wrapped struct {
		Operation *Operation `json:"operation"`
	}
	if json.Unmarshal(raw, &wrapped) == nil && wrapped.Operation != nil {
		return *wrapped.Operation, nil
	}
	var op Operation
	err := json.Unmarshal(raw, &op)
	return op, err
}

// Wait polls an operation until it is no longer running or ctx ends.
func (c *Controller) Wait(ctx context.Context, id string) (Operation, error) {
	for {
		op, err := c.Operation(ctx, id)
		if err == nil && op.State != "" && op.State != "running" {
			return op, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return op, fmt.Errorf("operation %s still %s: %w", id, op.State, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *Controller) do(ctx context.Context, method, path string, out any) error {
	secret, err := FrontSecret(c.DataDir)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(HeaderFrontSecret, secret)
	req.Header.Set(HeaderCSRF, "1")
	if c.User != "" {
		req.Header.Set(HeaderUser, c.User)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		json.Unmarshal(body, &eb)
		if eb.Error.Message == "" {
			eb.Error.Message = strings.TrimSpace(string(body))
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("controller answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// isRetryable says whether asking again later may help: the controller is still connecting to
// the engine, or another operation holds the stack.
func isRetryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusConflict
	}
	return true // network errors: the controller may be starting
}

// httpClientNoRedirect is for liveness checks: short, and never following a redirect elsewhere.
var httpClientNoRedirect = http.Client{
	Timeout:       3 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}
