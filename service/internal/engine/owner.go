package engine

import "fmt"

// Foreign says why an object with the given labels is not stack's to manage, or "" when it is.
// A name conflict is settled by this: an object of this stack found under the wanted name was
// made by an earlier run (one killed after the engine had taken its request), anything else
// belongs to somebody else and must be left alone.
func Foreign(labels map[string]string, stack string) string {
	owner, ok := labels[LabelStack]
	switch {
	case !ok:
		return fmt.Sprintf("it has no %s label, so forgebox did not create it", LabelStack)
	case owner != stack:
		return fmt.Sprintf("it belongs to forgebox stack %q (%s=%s), not to %q", owner, LabelStack, owner, stack)
	}
	return ""
}
