// Package auth holds users, roles and tokens: the role → action matrix,
// argon2id password hashing, token generation (stored only as SHA-256
// hashes), and Service, which authenticates bearer tokens, logs users in
// and administers users and tokens over the index.
//
// Actions are the strings of api.Action (this package does not import api).
package auth

import "slices"

// Roles.
const (
	RoleAdmin     = "admin"
	RoleInstaller = "installer"
	RoleOperator  = "operator"
	RoleAuditor   = "auditor"
)

// Roles lists every role.
var Roles = []string{RoleAdmin, RoleInstaller, RoleOperator, RoleAuditor}

// roleActions is the authorization matrix: the actions each role may
// perform. Admin may do everything. The anonymous actions (health, login)
// and the metrics scrape token are handled by the API guard, not here.
var roleActions = map[string][]string{
	RoleInstaller: {"ready", "camera.read", "camera.write", "probe", "session"},
	RoleOperator:  {"ready", "camera.read", "archive.read", "replay", "live", "session", "evidence.lock", "evidence.read", "compliance.read", "node.read"},
	RoleAuditor:   {"ready", "camera.read", "audit.read", "session", "evidence.read", "compliance.read", "node.read"},
}

// ValidRole reports whether role is one of Roles.
func ValidRole(role string) bool { return slices.Contains(Roles, role) }

// Can reports whether role may perform action.
func Can(role, action string) bool {
	if role == RoleAdmin {
		return true
	}
	return slices.Contains(roleActions[role], action)
}

// Identity is an authenticated caller.
type Identity struct {
	User string
	Role string
	// Townships limits an operator to cameras of these townships (empty:
	// every township).
	Townships []string
	// TokenID is the non-secret id of the token used ("" for the bootstrap
	// token).
	TokenID string
}
