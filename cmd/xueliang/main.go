// Command xueliang is the recording server and its command-line tools.
//
//	xueliang serve --config FILE   run the server
//	xueliang camera probe URL      check a camera before adding it
//	xueliang audit verify --config FILE   check the audit log (chain and signed anchor)
//	xueliang user add NAME --role R --config FILE   create a user (password on stdin)
//	xueliang camera add|list|rm|import   manage the camera registry (through the API)
//	xueliang node list|drain NODE  the cluster's nodes (through the API)
//	xueliang version               print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"xueliang/cmd/xueliang/internal/config"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: xueliang <command> [flags]

commands:
  serve --config FILE   record the configured cameras and serve the HTTP API
  camera probe URL      check a camera (codec, size, fps, bitrate, snapshot)
  audit verify --config FILE
                        check the audit log's hash chain and its signed
                        anchor (read-only); names the first edited or
                        deleted entry, a cut tail or a rewritten chain
  user add NAME --role ROLE [--townships A,B] --config FILE
                        create a user in the index (password on stdin)
  camera add|list|rm|import   manage the camera registry through the API
  export verify [--key KEY] DIR|ZIP
                        check an export package's signature and the
                        SHA-256 of every file; fails on any changed byte
  retention show|set    retention overrides per camera / township (API)
  evidence lock|list|unlock   evidence locks (API)
  node list|drain [--undrain] NODE   cluster nodes (API)
  version               print the version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stderr)
	case "camera":
		return runCamera(args[1:], os.Stdin, stdout, stderr)
	case "audit":
		return runAudit(args[1:], stdout, stderr)
	case "export":
		return runExport(args[1:], stdout, stderr)
	case "user":
		return runUser(args[1:], os.Stdin, stdout, stderr)
	case "retention":
		return runRetention(args[1:], stdout, stderr)
	case "evidence":
		return runEvidence(args[1:], stdout, stderr)
	case "node":
		return runNode(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "xueliang: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func version() string {
	v := "xueliang (devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += " " + s.Value
			}
		}
	}
	return v
}

func runServe(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "xueliang serve: --config FILE is required")
		return 2
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "xueliang: %v\n", err)
		return 2
	}
	logger := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, logger); err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("server stopped", "err", err)
		return 1
	}
	logger.Info("server stopped")
	return 0
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
