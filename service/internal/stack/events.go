package stack

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/forgebox/forgebox/service/internal/events"
	"github.com/forgebox/forgebox/service/internal/msg"
)

// Msg is the action as a message: "<action> <subject>: <reason>", with the reason's code.
func (a Action) Msg() msg.Msg {
	subject := a.Component
	if subject == "" {
		subject = a.Target
	}
	return msg.New("step", "action", msg.New("action."+string(a.Kind)), "subject", subject, "why", a.Why)
}

// stepID names the i-th action of a plan in its plan and step events, so a client follows it by
// ID instead of by its words.
func stepID(i int) string { return fmt.Sprintf("step-%d", i+1) }

// say emits e carrying the message code with its arguments and its English rendering.
func (s *Stack) say(e events.Event, code string, kv ...any) {
	s.emit(e.With(msg.New(code, kv...)))
}

// took rounds a duration for a progress line.
func took(start time.Time) string { return time.Since(start).Round(100 * time.Millisecond).String() }

// errMsg is the coded message an error carries (a *msg.Error somewhere in its chain), or none:
// the web app then shows the English.
func errMsg(err error) msg.Msg {
	var me *msg.Error
	if errors.As(err, &me) {
		return me.Msg
	}
	return msg.New("op.failed", "error", msg.Raw(err.Error()))
}

// ErrMsg is err as a message: its own code when it carries one, else its words set apart as
// another layer's (the web app quotes them rather than mixing English into its language).
func ErrMsg(err error) msg.Msg { return errMsg(err) }

// pullStatus reads the engine's words for a layer: done once it is complete or already there.
func pullStatus(status string) events.Status {
	switch strings.ToLower(status) {
	case "pull complete", "already exists", "download complete":
		return events.Done
	}
	return events.Working
}

// pullMsg gives the engine's per-layer statuses (docker's pull stream) a code each.
func pullMsg(status string) msg.Msg {
	if code, ok := pullCodes[strings.ToLower(status)]; ok {
		return msg.New(code)
	}
	return msg.New("pull.layer.other", "status", status)
}

var pullCodes = map[string]string{
	"pulling fs layer":   "pull.layer.queued",
	"waiting":            "pull.layer.waiting",
	"downloading":        "pull.layer.downloading",
	"verifying checksum": "pull.layer.verifying",
	"download complete":  "pull.layer.downloaded",
	"extracting":         "pull.layer.extracting",
	"pull complete":      "pull.layer.complete",
	"already exists":     "pull.layer.exists",
}

// knownOr is s when the catalogue has a word for it (state.<s>, health.<s>), else other.
func knownOr(s, other string) string {
	switch s {
	case "running", "exited", "created", "restarting", "paused", "dead", "removing", "healthy", "unhealthy", "starting", "none":
		return s
	}
	return other
}

// provisionChanges reads pgprov's change lines ("created role gitlab") as message codes.
var provisionChanges = []struct {
	re   *regexp.Regexp
	code string
}{
	{regexp.MustCompile(`^created role (\S+)$`), "provision.role"},
	{regexp.MustCompile(`^made role (\S+) a login role`), "provision.roleLogin"},
	{regexp.MustCompile(`^set the password of role (\S+)$`), "provision.password"},
	{regexp.MustCompile(`^created database (\S+)$`), "provision.database"},
	{regexp.MustCompile(`^gave database (\S+) to role (\S+)$`), "provision.owner"},
	{regexp.MustCompile(`^created extension (\S+) in (\S+)$`), "provision.extension"},
}

func provisionMsg(ch string) msg.Msg {
	for _, p := range provisionChanges {
		if m := p.re.FindStringSubmatch(ch); m != nil {
			kv := []any{"a", m[1]}
			if len(m) > 2 {
				kv = append(kv, "b", m[2])
			}
			return msg.New(p.code, kv...)
		}
	}
	return msg.New("provision.other", "change", ch)
}
