// Package web is forgebox's web app: plain HTML, CSS and JavaScript modules with no build step,
// embedded into the binary and served by the api package. Every URL in it is relative, so it
// works at / and inside DSM's app-window iframe under /webman/3rdparty/forgebox/index.cgi/.
package web

import "embed"

// Files holds the app.
//
//go:embed *.html *.js *.css *.svg
var Files embed.FS
