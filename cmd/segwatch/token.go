package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/segwatch/segwatch/ui/auth"
)

// dbFile is the SQLite file under the data dir holding tokens, users,
// sessions (and later incidents and the inventory).
const dbFile = "segwatch.db"

// openAuth opens the auth store under data, creating the data dir; callers
// validate their arguments first so that a usage error creates nothing.
func openAuth(ctx context.Context, data string) (*auth.Store, error) {
	if err := os.MkdirAll(data, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return auth.Open(ctx, filepath.Join(data, dbFile), auth.Options{})
}

func tokenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usagef("token: want 'token create --data DIR --role admin|analyst|viewer --name NAME'")
	}
	fs := newFlags("token create", stderr)
	data := fs.String("data", "./data", "data directory of the server")
	role := fs.String("role", "", "admin, analyst or viewer")
	name := fs.String("name", "", "who or what the token is for (unique among live tokens)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return usagef("token create: --role: %v", err)
	}
	if strings.TrimSpace(*name) == "" {
		return usagef("token create: --name is required")
	}
	st, err := openAuth(ctx, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	tok, err := st.CreateToken(ctx, *name, r)
	if err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func userCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		return usagef("user: want 'user add --data DIR --name NAME --role ROLE' with the password on stdin")
	}
	fs := newFlags("user add", stderr)
	data := fs.String("data", "./data", "data directory of the server")
	role := fs.String("role", "", "admin, analyst or viewer")
	name := fs.String("name", "", "login name")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return usagef("user add: --role: %v", err)
	}
	if strings.TrimSpace(*name) == "" {
		return usagef("user add: --name is required")
	}
	pw, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("user add: read password: %w", err)
	}
	pw = strings.TrimRight(pw, "\r\n")
	if len(pw) < 8 {
		return usagef("user add: the password (read from stdin) must have at least 8 characters")
	}
	st, err := openAuth(ctx, *data)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.AddUser(ctx, *name, r, pw); err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	fmt.Fprintf(stdout, "user %s added with role %s\n", *name, r)
	return nil
}
