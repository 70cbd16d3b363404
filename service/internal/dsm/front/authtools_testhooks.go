//go:build forgebox_testhooks

package front

// AuthTool is where one of DSM's authentication tools is: in a test build (-tags
// forgebox_testhooks), the stand-in the environment names, if any.
func AuthTool(get func(key, def string) string, key, def string) string { return get(key, def) }
