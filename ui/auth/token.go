package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenPrefix starts every API token, so a leaked one is recognisable in logs
// and by secret scanners.
const TokenPrefix = "sw_"

// tokenLen is the length of a token: the prefix and 32 random bytes in
// unpadded base64url.
var tokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(32)

// TokenInfo describes a stored token; the token itself is never kept.
type TokenInfo struct {
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
}

// randomSecret returns prefix followed by 32 random bytes in base64url.
func randomSecret(prefix string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// secretHash is what the tables keep instead of a token or session id. A
// plain SHA-256 is enough: the secret has 256 random bits, so there is
// nothing to brute-force and no need for a salt or a slow hash.
func secretHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// CreateToken makes a new API token for name with role and returns it. The
// plaintext is returned once and stored only as its SHA-256. A name may be
// reused once its previous token is revoked.
func (s *Store) CreateToken(ctx context.Context, name string, role Role) (string, error) {
	if err := checkName("token", name); err != nil {
		return "", err
	}
	if err := checkRole(role); err != nil {
		return "", err
	}
	tok, err := randomSecret(TokenPrefix)
	if err != nil {
		return "", fmt.Errorf("create token: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO auth_tokens(name, role, hash, created_at) VALUES (?, ?, ?, ?)`,
		name, string(role), secretHash(tok), ms(s.now()))
	if isUniqueViolation(err) {
		return "", fmt.Errorf("create token %q: %w", name, ErrExists)
	}
	if err != nil {
		return "", fmt.Errorf("create token %q: %w", name, err)
	}
	return tok, nil
}

// Authenticate returns the principal a token stands for, or
// ErrUnauthenticated when it is malformed, unknown or revoked. Other errors
// are the database's.
func (s *Store) Authenticate(ctx context.Context, token string) (Principal, error) {
	// Reject garbage without touching the database.
	if len(token) != tokenLen || !strings.HasPrefix(token, TokenPrefix) {
		return Principal{}, ErrUnauthenticated
	}
	var p Principal
	var role string
	err := s.db.QueryRowContext(ctx, `SELECT name, role FROM auth_tokens WHERE hash = ? AND revoked_at IS NULL`,
		secretHash(token)).Scan(&p.Name, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up token: %w", err)
	}
	p.Role = Role(role)
	return p, nil
}

// ListTokens returns the live (not revoked) tokens, by name.
func (s *Store) ListTokens(ctx context.Context) ([]TokenInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, role, created_at FROM auth_tokens WHERE revoked_at IS NULL ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []TokenInfo{}
	for rows.Next() {
		var t TokenInfo
		var role string
		var created int64
		if err := rows.Scan(&t.Name, &role, &created); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		t.Role, t.Created = Role(role), time.UnixMilli(created).UTC()
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes the live token called name; it stops authenticating at
// once, in every process sharing the file. ErrNotFound when there is none.
func (s *Store) RevokeToken(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE auth_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`,
		ms(s.now()), name)
	if err != nil {
		return fmt.Errorf("revoke token %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke token %q: %w", name, ErrNotFound)
	}
	return nil
}
