//go:build !forgebox_testhooks

package dsm

// authTool is where one of DSM's authentication tools is. A release binary ignores the
// environment here: whoever can set a variable for index.cgi must not choose who is an
// administrator.
func authTool(_ func(key, def string) string, _ string, def string) string { return def }
