package dfms

import "context"

// A ContextFlag is a yes-or-no mark that a context carries down to the
// code it reaches, such as the metadata store's lazy durability or the
// mount backend's "do not wait for the server". Set marks a context; In
// reports whether a context is marked. Each flag is its own variable,
// made by NewContextFlag: its address is the context key.
type ContextFlag struct {
	name string // for debugging; it also keeps the flags of distinct variables distinct
}

// NewContextFlag returns a new flag, named for debugging.
func NewContextFlag(name string) *ContextFlag { return &ContextFlag{name: name} }

// Set returns ctx marked with f.
func (f *ContextFlag) Set(ctx context.Context) context.Context {
	return context.WithValue(ctx, f, true)
}

// In reports whether ctx is marked with f.
func (f *ContextFlag) In(ctx context.Context) bool {
	v, _ := ctx.Value(f).(bool)
	return v
}

// String returns the flag's name.
func (f *ContextFlag) String() string { return f.name }
