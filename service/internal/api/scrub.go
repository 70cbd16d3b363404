package api

import (
	"strings"

	"github.com/gin-gonic/gin"
)

// ctxMayShowSecret marks the one request whose answer is a secret on purpose (the root
// password reveal); every other answer under /api/ passes the scrubber.
const ctxMayShowSecret = "forgebox.may-show-secret"

// scrubAnswers masks every known secret in what an /api/ handler writes, whatever the handler
// forgot to scrub itself. Answers are whole JSON documents written at once, so a secret is never
// split between two writes.
func (s *Server) scrubAnswers(c *gin.Context) {
	if !strings.HasPrefix(c.Request.URL.Path, "/api/") {
		c.Next()
		return
	}
	c.Writer = &scrubWriter{ResponseWriter: c.Writer, c: c, s: s}
	c.Next()
}

type scrubWriter struct {
	gin.ResponseWriter
	c *gin.Context
	s *Server
}

func (w *scrubWriter) Write(p []byte) (int, error) {
	if w.c.GetBool(ctxMayShowSecret) {
		return w.ResponseWriter.Write(p)
	}
	if _, err := w.ResponseWriter.Write([]byte(w.s.scrub.Scrub(string(p)))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *scrubWriter) WriteString(p string) (int, error) { return w.Write([]byte(p)) }
