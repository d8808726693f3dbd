package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"strings"
	"time"

	"xueliang/cmd/xueliang/internal/audit"
	"xueliang/cmd/xueliang/internal/auth"
	"xueliang/cmd/xueliang/internal/config"
	"xueliang/index"
)

// newAuth builds the authentication service over the index and returns the
// /metrics scrape token. It logs whether a bootstrap token is active, never
// its value.
func newAuth(cfg config.Config, db *index.DB, logger *slog.Logger) (*auth.Service, string, error) {
	bootstrap, metricsToken, err := cfg.AuthTokens()
	if err != nil {
		return nil, "", fmt.Errorf("auth: %w", err)
	}
	svc := &auth.Service{
		Store:          db,
		BootstrapToken: bootstrap,
		SessionTTL:     cfg.Auth.SessionTTL,
		MaxAPITokenTTL: cfg.Auth.MaxAPITokenTTL,
		Logger:         logger.With("component", "auth"),
	}
	users, err := db.Users(context.Background())
	if err != nil {
		return nil, "", fmt.Errorf("auth: %w", err)
	}
	logger.Info("authentication", "bootstrap_token", bootstrap != "", "users", len(users),
		"metrics_scrape_token", metricsToken != "", "session_ttl", cfg.Auth.SessionTTL)
	if bootstrap == "" && len(users) == 0 {
		logger.Warn("no users and no bootstrap token: nobody can log in; set " + config.BootstrapTokenEnv)
	}
	return svc, metricsToken, nil
}

// newAnchorer loads (creating it on first start) the audit anchor key and
// returns the anchor writer.
func newAnchorer(cfg config.Config, db *index.DB, logger *slog.Logger) (*audit.Anchorer, error) {
	key, created, err := audit.LoadOrCreateKey(cfg.AuditKeyFile())
	if err != nil {
		return nil, err
	}
	if created {
		logger.Info("audit anchor key created", "path", cfg.AuditKeyFile())
	}
	return &audit.Anchorer{Head: db, Key: key, Path: cfg.AuditAnchorFile(), Interval: cfg.Audit.AnchorInterval,
		Logger: logger.With("component", "audit")}, nil
}

const auditUsage = `usage: xueliang audit verify --config FILE

Opens the index read-only and checks the hash chain of the audit log,
then the log against the last signed anchor (audit.anchor_file, signed
with audit.key_file): exits 0 and prints "audit log OK: N entries" when
intact, or names the first edited or deleted entry, or says that the
tail was cut off or the chain rewritten since the anchor, and exits 1.
`

// verifyAuditLog checks the audit log of db, against the last signed
// anchor when there is one (aerr says why not otherwise): what "xueliang
// audit verify" and GET /api/v1/audit/verify report.
func verifyAuditLog(ctx context.Context, cfg config.Config, db audit.Scanner) (n int64, head string, anchor audit.Anchor, aerr, err error) {
	anchor, aerr = audit.ReadAnchor(cfg.AuditAnchorFile())
	var key []byte
	if aerr == nil {
		key, aerr = audit.ReadKey(cfg.AuditKeyFile())
	}
	if aerr == nil {
		n, head, err = audit.VerifyAnchored(ctx, db, anchor, key)
	} else {
		n, head, err = audit.Verify(ctx, db)
	}
	return n, head, anchor, aerr, err
}

// auditVerifier serves GET /api/v1/audit/verify (api.AuditVerifier).
type auditVerifier struct {
	cfg config.Config
	db  audit.Scanner
}

func (v auditVerifier) VerifyAudit(ctx context.Context) (int64, string, bool, error) {
	n, head, _, aerr, err := verifyAuditLog(ctx, v.cfg, v.db)
	return n, head, aerr == nil, err
}

// runAudit runs "xueliang audit ...".
func runAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "xueliang: %v\n", err)
		return 2
	}
	ctx := context.Background()
	// SQLite is opened read-only (query_only), so verifying cannot change
	// the file it judges; PostgreSQL through the configured URL.
	var db interface {
		audit.Scanner
		Close() error
	}
	if cfg.Index.PostgresURL != "" {
		db, err = openConfiguredIndex(ctx, cfg.Index, nil)
	} else {
		db, err = index.OpenAuditReader(ctx, cfg.Index.Path)
	}
	if err != nil {
		fmt.Fprintf(stderr, "xueliang audit verify: %v\n", err)
		return 2
	}
	defer db.Close()
	n, head, anchor, aerr, err := verifyAuditLog(ctx, cfg, db)
	var bad *audit.BadEntryError
	var badAnchor *audit.AnchorError
	switch {
	case errors.As(err, &bad):
		fmt.Fprintf(stdout, "audit log BROKEN at entry %d: %s (%d entries before it verified)\n", bad.ID, bad.Reason, n)
		return 1
	case errors.As(err, &badAnchor):
		fmt.Fprintf(stdout, "audit log BROKEN: %v (%d entries verified, last hash %s)\n", badAnchor, n, head)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "xueliang audit verify: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "audit log OK: %d entries, last hash %s\n", n, head)
	if aerr != nil {
		// Without an anchor a cut tail or a rewritten chain cannot be seen.
		fmt.Fprintf(stdout, "WARNING: not checked against an anchor (%v): truncation and rewriting are not detected\n", aerr)
	} else {
		fmt.Fprintf(stdout, "anchored: entry %d of %s matches\n", anchor.ID, anchor.At.UTC().Format(time.RFC3339))
	}
	return 0
}

const userUsage = `usage: xueliang user add NAME --role ROLE [--townships A,B] --config FILE < password

Creates a user directly in the index (for a server without a bootstrap
token, or to recover a lost admin). The password is the first line of
standard input (10 characters or more). The action is written to the
audit log as user "cli:<login name>".
`

// runUser runs "xueliang user add ...".
func runUser(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[0] != "add" || strings.HasPrefix(args[1], "-") {
		fmt.Fprint(stderr, userUsage)
		return 2
	}
	name := args[1]
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	role := fs.String("role", "", "admin, installer, operator or auditor")
	towns := fs.String("townships", "", "comma-separated townships (operators only)")
	if err := fs.Parse(args[2:]); err != nil {
		return 2
	}
	if *cfgPath == "" || *role == "" {
		fmt.Fprint(stderr, userUsage)
		return 2
	}
	cfg, err := config.Load(*cfgPath, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "xueliang: %v\n", err)
		return 2
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "xueliang user add: read password: %v\n", err)
		return 2
	}
	nu := auth.NewUser{Name: name, Role: *role, Password: strings.TrimRight(line, "\r\n")}
	if *towns != "" {
		nu.Townships = strings.Split(*towns, ",")
	}
	ctx := context.Background()
	db, err := openConfiguredIndex(ctx, cfg.Index, nil)
	if err != nil {
		fmt.Fprintf(stderr, "xueliang user add: %v\n", err)
		return 1
	}
	defer db.Close()
	svc := &auth.Service{Store: db}
	u, err := svc.CreateUser(ctx, nu)
	status := http.StatusCreated
	if err != nil {
		status = http.StatusBadRequest
	}
	who := "cli"
	if osu, uerr := user.Current(); uerr == nil {
		who = "cli:" + osu.Username
	}
	if aerr := svc.AppendAudit(ctx, index.AuditRecord{At: time.Now().UTC(), User: who, Role: auth.RoleAdmin,
		Remote: "local", Method: "CLI", Path: "xueliang user add " + name, Action: "user.admin", Status: status,
		Detail: "role " + *role}); aerr != nil {
		fmt.Fprintf(stderr, "xueliang user add: audit log: %v\n", aerr)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "xueliang user add: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "created user %s (role %s)\n", u.Name, u.Role)
	return 0
}
