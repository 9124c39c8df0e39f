package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// sessionPrefix marks UI session ids; they are never shown to people but
// the prefix keeps them apart from API tokens in logs and scanners.
const sessionPrefix = "sws_"

// Session is a UI login session. ID goes into the cookie; the table keeps
// only its SHA-256.
type Session struct {
	ID      string
	User    Principal
	Expires time.Time
}

// CreateSession opens a session for a user (normally right after
// CheckPassword) and drops expired sessions on the way.
func (s *Store) CreateSession(ctx context.Context, user string) (Session, error) {
	id, err := randomSecret(sessionPrefix)
	if err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	now := s.now()
	exp := now.Add(s.sessionTTL)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM auth_sessions WHERE expires_at <= ?`, ms(now)); err != nil {
		return Session{}, fmt.Errorf("expire sessions: %w", err)
	}
	var role string
	err = tx.QueryRowContext(ctx, `SELECT role FROM auth_users WHERE name = ?`, user).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("create session for %q: %w", user, ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("create session for %q: %w", user, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO auth_sessions(hash, user_name, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		secretHash(id), user, ms(now), ms(exp)); err != nil {
		return Session{}, fmt.Errorf("create session for %q: %w", user, err)
	}
	if err := tx.Commit(); err != nil {
		return Session{}, fmt.Errorf("create session for %q: %w", user, err)
	}
	return Session{ID: id, User: Principal{Name: user, Role: Role(role)}, Expires: exp}, nil
}

// SessionPrincipal returns who a live session belongs to, with the user's
// current role (a role change applies to open sessions at once), or
// ErrUnauthenticated when the id is unknown or expired.
func (s *Store) SessionPrincipal(ctx context.Context, id string) (Principal, error) {
	if len(id) != len(sessionPrefix)+43 || id[:len(sessionPrefix)] != sessionPrefix {
		return Principal{}, ErrUnauthenticated
	}
	var p Principal
	var role string
	err := s.db.QueryRowContext(ctx, `SELECT u.name, u.role FROM auth_sessions s JOIN auth_users u ON u.name = s.user_name
		WHERE s.hash = ? AND s.expires_at > ?`, secretHash(id), ms(s.now())).Scan(&p.Name, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up session: %w", err)
	}
	p.Role = Role(role)
	return p, nil
}

// DeleteSession ends a session (logout). Ending an unknown one is not an error.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM auth_sessions WHERE hash = ?`, secretHash(id)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
