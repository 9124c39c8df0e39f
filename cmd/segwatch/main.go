// Command segwatch watches the IoT segments of a company: it receives syslog
// and NetFlow/IPFIX, keeps every event searchable for 90 days, detects
// lateral movement, remote access, silent, unknown and decommissioned devices,
// and serves a web UI and JSON API. See README.md and SPEC §1 for the
// subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// usageError is a bad command line or configuration: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

const usage = `usage: segwatch <command> [flags]

commands:
  serve      run the whole pipeline (syslog, NetFlow, index, detectors, UI/API)
  token      create an API token:   segwatch token create --data DIR --role ROLE --name NAME
  user       add a UI login:        segwatch user add --data DIR --name NAME --role ROLE (password on stdin)
  simulate   send realistic IoT syslog and NetFlow traffic to a running server
  bench      load a realistic data set into a data dir and time the search query set
  version    print the version

Run 'segwatch <command> -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err as one line and maps it to the exit status: 2 for
// usage and configuration errors (SPEC §1), 1 for everything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "segwatch: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCmd(ctx, rest, stderr)
	case "token":
		return tokenCmd(ctx, rest, stdout, stderr)
	case "user":
		return userCmd(ctx, rest, stdin, stdout, stderr)
	case "simulate":
		return simulateCmd(ctx, rest, stdout, stderr)
	case "bench":
		return benchCmd(ctx, rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "segwatch %s\n", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usagef("unknown command %q (run 'segwatch help')", cmd)
}
