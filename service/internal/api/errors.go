package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/redact"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// Error codes: the one stable vocabulary of failures a client can branch on.
const (
	CodeUnauthorized        = "unauthorized"
	CodeForbidden           = "forbidden"
	CodeNotFound            = "not_found"
	CodeMethodNotAllowed    = "method_not_allowed"
	CodeInvalidRequest      = "invalid_request"
	CodeInvalidConfig       = "invalid_config"
	CodeBusy                = "busy"
	CodeConflict            = "conflict"
	CodeTooLarge            = "too_large"
	CodeEngineUnavailable   = "engine_unavailable"
	CodePrecondition        = "precondition_failed"    // Options.Preflight refused
	CodeConfigChangedOnDisk = "config_changed_on_disk" // the file was edited outside forgebox since it was loaded
	CodeInternal            = "internal"
)

// ErrorBody is every error response: {"error": {...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong. Fields is set for invalid_config: one entry per key, so a
// form can show each message beside its field.
type ErrorDetail struct {
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Fields  []config.FieldError `json:"fields,omitempty"`
}

// apiError is a failure with its HTTP status and the user-safe message; cause stays in the log.
type apiError struct {
	status int
	detail ErrorDetail
	cause  error
}

func (e *apiError) Error() string { return e.detail.Message }

func newError(status int, code, msg string) *apiError {
	return &apiError{status: status, detail: ErrorDetail{Code: code, Message: msg}}
}

// abort writes the error response and stops the handler chain.
func abort(c *gin.Context, e *apiError) {
	if e.cause != nil {
		c.Error(e.cause) //nolint:errcheck // recorded for the request log
	}
	d := e.detail
	if v, ok := c.Get(ctxScrub); ok {
		sc := v.(*redact.Scrubber)
		d.Message = sc.Scrub(d.Message)
	}
	c.AbortWithStatusJSON(e.status, ErrorBody{Error: d})
}

const ctxScrub = "forgebox.scrub"

// fail maps an error from the layers below to its response: busy, unknown component, invalid
// config, engine trouble; anything else is internal, with a message that stays generic.
func fail(c *gin.Context, err error) {
	abort(c, classify(err))
}

func classify(err error) *apiError {
	var ae *apiError
	var busy *stack.BusyError
	var unknown *stack.UnknownComponentError
	var noContainer *stack.NoContainerError
	var cfgErrs *config.Errors
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &busy):
		return newError(http.StatusConflict, CodeBusy, busy.Error())
	case errors.As(err, &unknown):
		return newError(http.StatusNotFound, CodeNotFound, unknown.Error())
	case errors.As(err, &noContainer):
		return newError(http.StatusConflict, CodeConflict, noContainer.Error())
	case errors.As(err, &cfgErrs):
		e := newError(http.StatusBadRequest, CodeInvalidConfig, cfgErrs.Error())
		e.detail.Fields = cfgErrs.List
		return e
	case errors.As(err, &maxBytes):
		return errTooLarge
	case engine.IsNotFound(err):
		return &apiError{status: http.StatusNotFound, detail: ErrorDetail{Code: CodeNotFound, Message: "the engine no longer has that object; reload the status"}, cause: err}
	}
	return &apiError{status: http.StatusInternalServerError, detail: ErrorDetail{Code: CodeInternal, Message: "internal error: " + err.Error()}, cause: err}
}

var (
	errUnauthorized = newError(http.StatusUnauthorized, CodeUnauthorized,
		"authentication required: open forgebox from DSM, or log in with the admin token (forgebox token prints it)")
	errTooLarge = newError(http.StatusRequestEntityTooLarge, CodeTooLarge,
		"the request body is larger than the 1 MiB forgebox accepts")
	errNoEngine = newError(http.StatusServiceUnavailable, CodeEngineUnavailable,
		"the Docker Engine is not reachable; forgebox keeps trying (see doctor)")
)
