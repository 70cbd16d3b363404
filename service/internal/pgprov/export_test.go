package pgprov

import "context"

// SetBeforeCreate installs the hook that runs between a check and its create, for the race tests.
func SetBeforeCreate(f func(ctx context.Context, what string)) (restore func()) {
	old := beforeCreate
	beforeCreate = f
	return func() { beforeCreate = old }
}
