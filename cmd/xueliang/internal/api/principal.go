package api

import (
	"context"
	"slices"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	// User is the user name ("bootstrap" for the bootstrap token).
	User string
	// Role is admin, installer, operator or auditor.
	Role string
	// Townships limits an operator to cameras of these townships; empty
	// means every township.
	Townships []string
}

// InScope reports whether p may see cameras of township. A nil Principal
// (a handler called without guard, as in unit tests) sees everything.
func (p *Principal) InScope(township string) bool {
	return p == nil || len(p.Townships) == 0 || slices.Contains(p.Townships, township)
}

type principalKey struct{}

// withPrincipal returns ctx carrying p.
func withPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalFrom returns the request's caller, nil when none was set.
func principalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
