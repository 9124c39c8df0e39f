package auth

import "fmt"

// Role is what a principal may do. Roles are ordered: admin > analyst > viewer.
type Role string

// The roles, from most to least powerful.
const (
	// RoleAdmin may do everything, including token and user management.
	RoleAdmin Role = "admin"
	// RoleAnalyst may read everything and change devices and incidents.
	RoleAnalyst Role = "analyst"
	// RoleViewer may read everything and change nothing.
	RoleViewer Role = "viewer"
)

// rank orders the roles; 0 means "not a role", so an unknown role allows
// nothing and is allowed by nothing.
func (r Role) rank() int {
	switch r {
	case RoleAdmin:
		return 3
	case RoleAnalyst:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether a principal with role r may do what needs required.
func (r Role) Allows(required Role) bool {
	return r.rank() > 0 && required.rank() > 0 && r.rank() >= required.rank()
}

// ParseRole returns the role named s, or an error naming the valid ones.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("unknown role %q (want admin, analyst or viewer)", s)
	}
	return r, nil
}
