package api

import (
	"errors"
	"github.com/forgebox/forgebox/service/internal/advice"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/forgebox/forgebox/service/internal/config"
	"github.com/forgebox/forgebox/service/internal/engine"
	"github.com/forgebox/forgebox/service/internal/msg"
	"github.com/forgebox/forgebox/service/internal/redact"
	"github.com/forgebox/forgebox/service/internal/stack"
)

// Error codes: the one stable vocabulary of failures a client can branch on.
const (
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidConfig        = "invalid_config"
	CodeBusy                 = "busy"
	CodeConflict             = "conflict"
	CodeTooLarge             = "too_large"
	CodeEngineUnavailable    = "engine_unavailable"
	CodePrecondition         = "precondition_failed"    // Options.Preflight refused
	CodeConfigChangedOnDisk  = "config_changed_on_disk" // the file was edited outside forgebox since it was loaded
	CodePreconditionRequired = "precondition_required"  // a config save without If-Match
	CodeInternal             = "internal"
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
	// Text is Message as a message code, for the web app's languages; zero for an error that
	// has none (the app shows Message).
	Text msg.Msg `json:"text,omitzero"`
	// Advice says what to do about the cause, when forgebox knows (package advice).
	Advice msg.Msg `json:"advice,omitzero"`
}

// apiError is a failure with its HTTP status and the user-safe message; cause stays in the log.
type apiError struct {
	status int
	detail ErrorDetail
	cause  error
}

func (e *apiError) Error() string { return e.detail.Message }

// codedError is an error response whose message has a code; m's English is the message.
func codedError(status int, code string, m msg.Msg) *apiError {
	return &apiError{status: status, detail: ErrorDetail{Code: code, Message: m.String(), Text: m}}
}

func withCause(e *apiError, cause error) *apiError {
	e.cause = cause
	return e
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
		e := codedError(http.StatusConflict, CodeBusy, msg.New("api.busy"))
		if busy.Holder.Op != "" {
			e.detail.Text = msg.New("api.busyBy", "op", msg.Q(busy.Holder.Op), "pid", busy.Holder.PID, "since", busy.Holder.Since.Format(time.TimeOnly))
		}
		e.detail.Message = busy.Error()
		return e
	case errors.As(err, &unknown):
		return codedError(http.StatusNotFound, CodeNotFound, msg.New("api.unknownComponent", "name", msg.Q(unknown.Name), "known", strings.Join(unknown.Known, ", ")))
	case errors.As(err, &noContainer):
		return codedError(http.StatusConflict, CodeConflict, msg.New("api.noContainer", "component", noContainer.Component))
	case errors.As(err, &cfgErrs):
		e := codedError(http.StatusBadRequest, CodeInvalidConfig, msg.New("api.invalidConfig", "n", len(cfgErrs.List)))
		e.detail.Message = cfgErrs.Error()
		e.detail.Fields = cfgErrs.List
		return e
	case errors.As(err, &maxBytes):
		return errTooLarge
	case engine.IsNotFound(err):
		e := codedError(http.StatusNotFound, CodeNotFound, msg.New("api.engineGone"))
		e.cause = err
		return e
	}
	e := withCause(codedError(http.StatusInternalServerError, CodeInternal, msg.New("api.internal", "error", msg.Raw(err.Error()))), err)
	// The edge: what to do about the cause is said here, once (package advice).
	if m, ok := advice.For(err); ok {
		e.detail.Message += " (" + m.String() + ")"
		e.detail.Advice = m
	}
	return e
}

var (
	errUnauthorized = codedError(http.StatusUnauthorized, CodeUnauthorized, msg.New("api.unauthorized"))
	errTooLarge     = codedError(http.StatusRequestEntityTooLarge, CodeTooLarge, msg.New("api.tooLarge"))
	errNoEngine     = codedError(http.StatusServiceUnavailable, CodeEngineUnavailable, msg.New("api.noEngine"))
	errNoPage       = codedError(http.StatusNotFound, CodeNotFound, msg.New("api.noPage"))
)
