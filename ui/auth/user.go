package auth

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MinPasswordLen is the shortest password AddUser accepts.
const MinPasswordLen = 8

// maxPasswordLen bounds the work an attacker can ask of one hash.
const maxPasswordLen = 1024

// defaultPBKDF2Iter follows OWASP's 2023 advice for PBKDF2-HMAC-SHA256.
const defaultPBKDF2Iter = 600_000

// ErrWeakPassword means a password is shorter than MinPasswordLen.
var ErrWeakPassword = fmt.Errorf("%w: password must be at least %d characters", ErrInvalid, MinPasswordLen)

// UserInfo describes a UI login; the password hash is never returned.
type UserInfo struct {
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
}

// hashPassword returns "pbkdf2-sha256$ITER$SALT$KEY" (base64 without padding),
// so the iteration count can grow later without breaking stored hashes.
func hashPassword(password string, iter int) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, iter, 32)
	if err != nil {
		return "", fmt.Errorf("pbkdf2: %w", err)
	}
	enc := base64.RawStdEncoding
	return "pbkdf2-sha256$" + strconv.Itoa(iter) + "$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key), nil
}

// verifyPassword reports whether password matches a hashPassword result.
func verifyPassword(password, stored string) (bool, error) {
	parts := strings.Split(stored, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false, errors.New("unknown password hash format")
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 {
		return false, errors.New("bad iteration count in password hash")
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[2])
	want, err2 := enc.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, errors.New("bad encoding in password hash")
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	if err != nil {
		return false, fmt.Errorf("pbkdf2: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// acquire takes a password-hashing slot, or gives up when ctx ends.
func (s *Store) acquire(ctx context.Context) error {
	select {
	case s.pwSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) release() { <-s.pwSlots }

// AddUser adds a UI login. The password is stored as a salted PBKDF2-SHA256
// hash with 600 000 iterations.
func (s *Store) AddUser(ctx context.Context, name string, role Role, password string) error {
	if err := checkName("user", name); err != nil {
		return err
	}
	if err := checkRole(role); err != nil {
		return err
	}
	if len(password) < MinPasswordLen {
		return ErrWeakPassword
	}
	if len(password) > maxPasswordLen {
		return fmt.Errorf("%w: password longer than %d bytes", ErrInvalid, maxPasswordLen)
	}
	if err := s.acquire(ctx); err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	h, err := hashPassword(password, s.pwIter)
	s.release()
	if err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO auth_users(name, role, password_hash, created_at) VALUES (?, ?, ?, ?)`,
		name, string(role), h, ms(s.now()))
	if isUniqueViolation(err) {
		return fmt.Errorf("add user %q: %w", name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	return nil
}

// CheckPassword returns the user's principal when password is right, else
// ErrUnauthenticated. An unknown user costs the same hash as a known one, so
// response time does not reveal which names exist.
func (s *Store) CheckPassword(ctx context.Context, name, password string) (Principal, error) {
	if len(password) > maxPasswordLen {
		return Principal{}, ErrUnauthenticated
	}
	var role, stored string
	err := s.db.QueryRowContext(ctx, `SELECT role, password_hash FROM auth_users WHERE name = ?`, name).Scan(&role, &stored)
	known := err == nil
	if errors.Is(err, sql.ErrNoRows) {
		stored, err = s.dummyHash()
	}
	if err != nil {
		return Principal{}, fmt.Errorf("check password: %w", err)
	}
	if err := s.acquire(ctx); err != nil {
		return Principal{}, fmt.Errorf("check password: %w", err)
	}
	ok, err := verifyPassword(password, stored)
	s.release()
	if err != nil {
		return Principal{}, fmt.Errorf("check password of %q: %w", name, err)
	}
	if !ok || !known {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Name: name, Role: Role(role)}, nil
}

// dummyHash is a hash of nothing in particular at the store's cost, made on
// first use so that opening the store stays cheap for the CLI.
func (s *Store) dummyHash() (string, error) {
	s.dummyOnce.Do(func() {
		s.dummy, s.dummyErr = hashPassword("segwatch-no-such-user", s.pwIter)
	})
	return s.dummy, s.dummyErr
}

// ListUsers returns the UI logins, by name.
func (s *Store) ListUsers(ctx context.Context) ([]UserInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, role, created_at FROM auth_users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []UserInfo{}
	for rows.Next() {
		var u UserInfo
		var role string
		var created int64
		if err := rows.Scan(&u.Name, &role, &created); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.Role, u.Created = Role(role), time.UnixMilli(created).UTC()
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// RemoveUser deletes a UI login and ends its sessions. ErrNotFound when
// there is no such user.
func (s *Store) RemoveUser(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM auth_users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("remove user %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("remove user %q: %w", name, ErrNotFound)
	}
	return nil
}
