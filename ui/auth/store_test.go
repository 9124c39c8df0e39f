package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTest(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRoleAllows(t *testing.T) {
	f := func(have, need Role, want bool) {
		t.Helper()
		if got := have.Allows(need); got != want {
			t.Errorf("%q.Allows(%q) = %v, want %v", have, need, got, want)
		}
	}
	f(RoleAdmin, RoleAdmin, true)
	f(RoleAdmin, RoleAnalyst, true)
	f(RoleAdmin, RoleViewer, true)
	f(RoleAnalyst, RoleAdmin, false)
	f(RoleAnalyst, RoleAnalyst, true)
	f(RoleAnalyst, RoleViewer, true)
	f(RoleViewer, RoleAnalyst, false)
	f(RoleViewer, RoleViewer, true)
	f("", RoleViewer, false)
	f("root", RoleViewer, false)
	f(RoleAdmin, "", false)
	if _, err := ParseRole("Admin"); err == nil {
		t.Error("ParseRole is case-sensitive: Admin must be refused")
	}
	if r, err := ParseRole("analyst"); err != nil || r != RoleAnalyst {
		t.Errorf("ParseRole(analyst) = %q, %v", r, err)
	}
}

// TestTokenAcrossStores is the CLI-and-server case: a token created through
// one Store is accepted by another on the same file while it is busy, and a
// revocation through the first applies at once in the second.
func TestTokenAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "segwatch.db")
	server := openTest(t, path, Options{})
	ctx := context.Background()
	seed, err := server.CreateToken(ctx, "seed", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}

	// Keep the server reading while the "CLI" writes.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := server.Authenticate(ctx, seed); err != nil {
				readErr = err
				return
			}
		}
	}()

	cli := openTest(t, path, Options{})
	tok, err := cli.CreateToken(ctx, "grafana", RoleAnalyst)
	if err != nil {
		t.Fatalf("CreateToken from second store: %v", err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != tokenLen {
		t.Errorf("token %q: want prefix %q and length %d", tok, TokenPrefix, tokenLen)
	}
	p, err := server.Authenticate(ctx, tok)
	if err != nil {
		t.Fatalf("server does not accept CLI token: %v", err)
	}
	if p != (Principal{Name: "grafana", Role: RoleAnalyst}) {
		t.Errorf("principal = %+v", p)
	}
	if err := cli.RevokeToken(ctx, "grafana"); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("revoked token: err = %v, want ErrUnauthenticated", err)
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Errorf("concurrent Authenticate failed: %v", readErr)
	}
}

// TestConcurrentOpen opens a fresh file from several stores at once: the
// migration must run exactly once and none may fail with "database is locked".
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "segwatch.db")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), path, Options{})
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := openTest(t, path, Options{})
	var v int
	if err := s.db.QueryRow(`SELECT value FROM auth_meta WHERE key='schema_version'`).Scan(&v); err != nil || v != len(migrations) {
		t.Errorf("schema_version = %d, %v; want %d", v, err, len(migrations))
	}
	var mode string
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "segwatch.db")
	s := openTest(t, path, Options{})
	if _, err := s.db.Exec(`UPDATE auth_meta SET value = 99 WHERE key='schema_version'`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), path, Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: err = %v, want a 'newer' error", err)
	}
}

func TestTokenStoredHashed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "segwatch.db")
	s := openTest(t, path, Options{})
	tok, err := s.CreateToken(context.Background(), "ci", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Read the file with a plain connection, as an attacker with the file would.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name, role string
	var hash []byte
	if err := db.QueryRow(`SELECT name, role, hash FROM auth_tokens`).Scan(&name, &role, &hash); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(tok))
	if !bytes.Equal(hash, want[:]) {
		t.Errorf("stored hash %x, want sha256(token) %x", hash, want)
	}
	secret := tok[len(TokenPrefix):]
	if bytes.Contains(dumpDB(t, db), []byte(secret)) {
		t.Error("token plaintext found in the database")
	}
}

// dumpDB concatenates every text and blob value of every auth table.
func dumpDB(t *testing.T, db *sql.DB) []byte {
	t.Helper()
	var out []byte
	for _, table := range []string{"auth_tokens", "auth_users", "auth_sessions"} {
		rows, err := db.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				switch v := v.(type) {
				case string:
					out = append(out, v...)
				case []byte:
					out = append(out, v...)
				}
			}
		}
		rows.Close()
	}
	return out
}

func TestAuthenticateRejects(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "a.db"), Options{})
	ctx := context.Background()
	tok, err := s.CreateToken(ctx, "x", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	other := TokenPrefix + strings.Repeat("A", tokenLen-len(TokenPrefix))
	for _, bad := range []string{"", "sw_", tok[:len(tok)-1], tok + "A", "xx" + tok[2:], other, strings.ToUpper(tok)} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) err = %v, want ErrUnauthenticated", bad, err)
		}
	}
}

func TestCreateTokenValidation(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "a.db"), Options{})
	ctx := context.Background()
	if _, err := s.CreateToken(ctx, "ok", "root"); err == nil {
		t.Error("unknown role accepted")
	}
	for _, name := range []string{"", "has space", "ctl\x01", strings.Repeat("n", 65)} {
		if _, err := s.CreateToken(ctx, name, RoleViewer); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := s.CreateToken(ctx, "dup", RoleViewer); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateToken(ctx, "dup", RoleAdmin); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate live name: err = %v, want ErrExists", err)
	}
	if err := s.RevokeToken(ctx, "dup"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "dup"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second revoke: err = %v, want ErrNotFound", err)
	}
	if _, err := s.CreateToken(ctx, "dup", RoleAdmin); err != nil {
		t.Errorf("name reuse after revoke: %v", err)
	}
	list, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "dup" || list[0].Role != RoleAdmin {
		t.Errorf("ListTokens = %+v, want only the live dup/admin", list)
	}
}

func TestUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	s := openTest(t, path, Options{})
	ctx := context.Background()
	const pw = "correct horse battery"
	if err := s.AddUser(ctx, "alice", RoleAnalyst, "short"); !errors.Is(err, ErrWeakPassword) {
		t.Errorf("short password: err = %v, want ErrWeakPassword", err)
	}
	if err := s.AddUser(ctx, "alice", RoleAnalyst, pw); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, "alice", RoleViewer, pw); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate user: err = %v, want ErrExists", err)
	}
	p, err := s.CheckPassword(ctx, "alice", pw)
	if err != nil || p != (Principal{Name: "alice", Role: RoleAnalyst}) {
		t.Errorf("CheckPassword right = %+v, %v", p, err)
	}
	if _, err := s.CheckPassword(ctx, "alice", pw+"x"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("wrong password: err = %v, want ErrUnauthenticated", err)
	}
	if _, err := s.CheckPassword(ctx, "mallory", pw); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("unknown user: err = %v, want ErrUnauthenticated", err)
	}

	var stored string
	if err := s.db.QueryRow(`SELECT password_hash FROM auth_users WHERE name='alice'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, pw) || !strings.HasPrefix(stored, "pbkdf2-sha256$600000$") {
		t.Errorf("stored password hash %q: want pbkdf2-sha256 with 600000 iterations and no plaintext", stored)
	}
	// Same password, different salt.
	if err := s.AddUser(ctx, "bob", RoleViewer, pw); err != nil {
		t.Fatal(err)
	}
	var stored2 string
	if err := s.db.QueryRow(`SELECT password_hash FROM auth_users WHERE name='bob'`).Scan(&stored2); err != nil {
		t.Fatal(err)
	}
	if stored2 == stored {
		t.Error("two users with one password got the same hash: no salt")
	}
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 2 || users[0].Name != "alice" || users[1].Role != RoleViewer {
		t.Errorf("ListUsers = %+v, %v", users, err)
	}
}

func TestVerifyPasswordFormats(t *testing.T) {
	h, err := hashPassword("pw", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := verifyPassword("pw", h); !ok || err != nil {
		t.Errorf("verify own hash = %v, %v", ok, err)
	}
	for _, bad := range []string{"", "md5$1$a$b", "pbkdf2-sha256$x$a$b", "pbkdf2-sha256$0$AAAA$AAAA", "pbkdf2-sha256$10$!!$AAAA", "pbkdf2-sha256$10$AAAA$"} {
		if ok, err := verifyPassword("pw", bad); ok || err == nil {
			t.Errorf("verifyPassword(%q) = %v, %v; want false and an error", bad, ok, err)
		}
	}
}

func TestSessions(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := openTest(t, filepath.Join(t.TempDir(), "a.db"), Options{Now: clock, SessionTTL: time.Hour})
	s.pwIter = 1000 // the slow hash is covered by TestUsers
	ctx := context.Background()
	if err := s.AddUser(ctx, "carol", RoleViewer, "password1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSession(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("session for unknown user: err = %v", err)
	}
	sess, err := s.CreateSession(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if !sess.Expires.Equal(now.Add(time.Hour)) {
		t.Errorf("expires %v", sess.Expires)
	}
	p, err := s.SessionPrincipal(ctx, sess.ID)
	if err != nil || p != (Principal{Name: "carol", Role: RoleViewer}) {
		t.Errorf("SessionPrincipal = %+v, %v", p, err)
	}
	if _, err := s.Authenticate(ctx, sess.ID); !errors.Is(err, ErrUnauthenticated) {
		t.Error("a session id must not work as an API token")
	}
	// Expiry.
	now = now.Add(time.Hour)
	if _, err := s.SessionPrincipal(ctx, sess.ID); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("expired session: err = %v", err)
	}
	// A new login sweeps the expired one out of the table.
	sess2, err := s.CreateSession(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM auth_sessions`).Scan(&n); err != nil || n != 1 {
		t.Errorf("sessions after sweep = %d, %v; want 1", n, err)
	}
	if err := s.DeleteSession(ctx, sess2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionPrincipal(ctx, sess2.ID); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("deleted session: err = %v", err)
	}
	// Removing the user ends its sessions.
	sess3, err := s.CreateSession(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveUser(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionPrincipal(ctx, sess3.ID); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("session of removed user: err = %v", err)
	}
	if err := s.RemoveUser(ctx, "carol"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: err = %v", err)
	}
}

func TestOpenBadPath(t *testing.T) {
	if _, err := Open(context.Background(), "", Options{}); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "a?mode=ro"), Options{}); err == nil {
		t.Error("path with '?' accepted")
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing-dir", "a.db"), Options{}); err == nil {
		t.Error("path in a missing directory accepted")
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "a.db"), Options{})
	ctx := context.Background()
	tok, err := s.CreateToken(ctx, "bench", RoleViewer)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckPassword(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "a.db"), Options{})
	ctx := context.Background()
	if err := s.AddUser(ctx, "u", RoleViewer, "password1"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.CheckPassword(ctx, "u", "password1"); err != nil {
			b.Fatal(err)
		}
	}
}
