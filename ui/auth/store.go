// Package auth keeps segwatch's API tokens, UI users and UI sessions in a
// SQLite file and answers one question for the HTTP layer: who is this, and
// with which role?
//
// The file is shared: the server and the CLI (`segwatch token create`,
// `segwatch user add`) open it at the same time, so it runs in WAL mode with a
// busy timeout, and every secret is stored only as a hash. Tables are
// prefixed auth_ and versioned in auth_meta, so other stores may live in the
// same database file without their migrations colliding.
package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// Errors callers tell apart.
var (
	// ErrUnauthenticated means the token, session or password is wrong,
	// unknown, revoked or expired. It never says which, on purpose.
	ErrUnauthenticated = errors.New("invalid credentials")
	// ErrNotFound means the named token or user does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a token or user of that name already exists.
	ErrExists = errors.New("already exists")
	// ErrInvalid wraps every refusal of a bad name, role or password.
	ErrInvalid = errors.New("invalid")
)

// Principal is who a request acts as.
type Principal struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// Options tunes a Store. The zero value is usable.
type Options struct {
	// Now is the clock for creation times and session expiry; time.Now when nil.
	Now func() time.Time
	// SessionTTL is how long a UI session lasts; 12 h when zero.
	SessionTTL time.Duration
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection or process; 5 s when zero.
	BusyTimeout time.Duration
}

// Store is the token, user and session store. It is safe for concurrent use.
type Store struct {
	db         *sql.DB
	now        func() time.Time
	sessionTTL time.Duration
	// pwIter is the PBKDF2 iteration count for new password hashes; tests in
	// this package lower it, nothing else may.
	pwIter int
	// pwSlots bounds concurrent password hashing: each costs ~0.2 s of CPU,
	// so an unbounded login flood would starve the ingest pipeline.
	pwSlots chan struct{}
	// dummy is checked for unknown users so timing does not reveal them.
	dummyOnce sync.Once
	dummy     string
	dummyErr  error
}

// migrations are applied in order; auth_meta.schema_version counts how many
// have run. Append only.
var migrations = []string{
	`CREATE TABLE auth_tokens (
		id         INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		role       TEXT NOT NULL CHECK (role IN ('admin','analyst','viewer')),
		hash       BLOB NOT NULL UNIQUE,
		created_at INTEGER NOT NULL,
		revoked_at INTEGER
	);
	CREATE UNIQUE INDEX auth_tokens_live_name ON auth_tokens(name) WHERE revoked_at IS NULL;
	CREATE TABLE auth_users (
		name          TEXT PRIMARY KEY,
		role          TEXT NOT NULL CHECK (role IN ('admin','analyst','viewer')),
		password_hash TEXT NOT NULL,
		created_at    INTEGER NOT NULL
	);
	CREATE TABLE auth_sessions (
		hash       BLOB PRIMARY KEY,
		user_name  TEXT NOT NULL REFERENCES auth_users(name) ON DELETE CASCADE,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE INDEX auth_sessions_expiry ON auth_sessions(expires_at);`,
}

// Open opens (creating if needed) the store at path and brings its schema up
// to date. Several Stores, in one process or several, may share one file.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open auth store: empty path")
	}
	if strings.ContainsAny(path, "?#") {
		// The driver reads everything after '?' as DSN options.
		return nil, fmt.Errorf("open auth store: path %q must not contain '?' or '#'", path)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_foreign_keys", "1")
	// Write transactions take the lock at BEGIN, so two processes never both
	// read, then both try to upgrade and one fails with SQLITE_BUSY.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open auth store: %w", err)
	}
	s := &Store{
		db:         db,
		now:        opts.Now,
		sessionTTL: opts.SessionTTL,
		pwIter:     defaultPBKDF2Iter,
		pwSlots:    make(chan struct{}, 2),
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open auth store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS auth_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create auth_meta: %w", err)
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT value FROM auth_meta WHERE key = 'schema_version'`).Scan(&version)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this segwatch knows (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if version == len(migrations) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO auth_meta(key, value) VALUES ('schema_version', ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, len(migrations)); err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// checkName accepts the names of tokens and users: 1-64 printable
// characters without spaces, so they show and log unambiguously.
func checkName(what, name string) error {
	if name == "" || len(name) > 64 || !utf8.ValidString(name) {
		return fmt.Errorf("%w: %s name must be 1-64 bytes of UTF-8", ErrInvalid, what)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%w: %s name %q must not contain spaces or control characters", ErrInvalid, what, name)
		}
	}
	return nil
}

func checkRole(r Role) error {
	if !r.Valid() {
		return fmt.Errorf("%w: unknown role %q (want admin, analyst or viewer)", ErrInvalid, r)
	}
	return nil
}

// isUniqueViolation reports a UNIQUE or PRIMARY KEY constraint failure; the
// driver's error type lives in modernc.org/sqlite/lib, whose codes are not
// worth importing for one comparison.
func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func ms(t time.Time) int64 { return t.UnixMilli() }
