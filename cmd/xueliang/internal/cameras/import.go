package cameras

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"xueliang/cmd/xueliang/internal/registry"
)

// ImportRow is one row of a bulk import, every field as text (as in the
// CSV file the installer CLI reads), so that a malformed number is
// reported as a bad field of its row like any other problem.
type ImportRow struct {
	// Row is the caller's row number (the CSV line), echoed in the report.
	Row       int    `json:"row"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Township  string `json:"township"`
	Village   string `json:"village"`
	Lat       string `json:"lat"`
	Lon       string `json:"lon"`
	MainURL   string `json:"main_url"`
	SubURL    string `json:"sub_url"`
	Username  string `json:"username"`
	Password  string `json:"password"`
	Transport string `json:"transport"`
	// SegmentDuration is a Go duration or empty.
	SegmentDuration string `json:"segment_duration"`
	// Enabled and Motion are true/false, yes/no, 1/0 or empty (enabled
	// defaults to true, motion to false).
	Enabled string `json:"enabled"`
	Motion  string `json:"motion"`
}

// RowResult is the report of one import row.
type RowResult struct {
	Row     int         `json:"row"`
	ID      string      `json:"id"`
	Outcome Outcome     `json:"outcome"`
	Error   string      `json:"error,omitempty"`
	Fields  FieldErrors `json:"fields,omitempty"`
	// PasswordDropped: the row moved the camera to a new host, port or
	// scheme without a password, so the stored one was dropped
	// (SameEndpoints).
	PasswordDropped bool `json:"password_dropped,omitempty"`
}

// ImportReport is the answer of an import: one result per row, in order,
// and the counts.
type ImportReport struct {
	DryRun    bool        `json:"dry_run"`
	Rows      []RowResult `json:"rows"`
	Created   int         `json:"created"`
	Updated   int         `json:"updated"`
	Unchanged int         `json:"unchanged"`
	Failed    int         `json:"failed"`
}

// MaxImportRows bounds one import request.
const MaxImportRows = 5000

// input converts a row to an Input, reporting unparseable fields. An empty
// password keeps the stored one (so that a file without passwords does not
// erase them); an empty username clears both.
func (r ImportRow) input() (Input, FieldErrors) {
	bad := FieldErrors{}
	in := Input{
		ID: r.ID, Name: r.Name, Township: r.Township, Village: r.Village, MainURL: r.MainURL, SubURL: r.SubURL,
		Username: r.Username, Transport: r.Transport, SegmentDuration: r.SegmentDuration,
	}
	if r.Password != "" {
		p := r.Password
		in.Password = &p
	}
	num := func(field, s string) *float64 {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			bad[field] = fmt.Sprintf("want a number of degrees, got %q", truncate(s))
			return nil
		}
		return &f
	}
	in.Lat, in.Lon = num("lat", r.Lat), num("lon", r.Lon)
	flag := func(field, s string, def bool) bool {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "":
			return def
		case "true", "yes", "y", "1", "on":
			return true
		case "false", "no", "n", "0", "off":
			return false
		}
		bad[field] = fmt.Sprintf("want true or false, got %q", truncate(s))
		return def
	}
	en := flag("enabled", r.Enabled, true)
	in.Enabled = &en
	in.Motion = flag("motion", r.Motion, false)
	return in, bad
}

// validate converts and checks a row: the fields that do not parse, then
// every other problem validate finds (a field's parse error is the one
// reported for it). The map is never nil.
func (r ImportRow) validate(policy registry.Policy) (validated, FieldErrors) {
	in, bad := r.input()
	v, vbad := validate(in, policy)
	for k, msg := range vbad {
		if _, dup := bad[k]; !dup {
			bad[k] = msg
		}
	}
	return v, bad
}

// DuplicateIDs maps the index of every row whose ID (trimmed, not empty)
// is on an earlier row to that earlier row's number.
func DuplicateIDs(rows []ImportRow) map[int]int {
	first := map[string]int{}
	dup := map[int]int{}
	for i, r := range rows {
		id := strings.TrimSpace(r.ID)
		if id == "" {
			continue
		}
		if row, seen := first[id]; seen {
			dup[i] = row
		} else {
			first[id] = r.Row
		}
	}
	return dup
}

// markDuplicate names the id field of a row whose ID is on row first,
// unless the ID is already bad for another reason.
func markDuplicate(bad FieldErrors, first int) {
	if bad["id"] == "" {
		bad["id"] = fmt.Sprintf("duplicate: the same ID is on row %d", first)
	}
}

// MarkDuplicate fails a row whose ID is on the earlier row first. A client
// that checks a file in several requests finds the repeats across them
// with DuplicateIDs and marks them here, so that its report is the one a
// single request would give.
func (r *RowResult) MarkDuplicate(first int) {
	if r.Fields == nil {
		r.Fields = FieldErrors{}
	}
	markDuplicate(r.Fields, first)
	r.Outcome, r.Error = Failed, r.Fields.String()
}

// Import validates every row, then (unless dryRun) upserts the valid ones
// by ID, and applies the changes once. A row fails when a field is bad,
// when its ID repeats an earlier row of the same request, or when the ID
// is a configuration-file camera; the other rows are still imported.
// Importing the same rows again reports them all unchanged.
func (s *Service) Import(ctx context.Context, rows []ImportRow, dryRun bool) (ImportReport, error) {
	rep := ImportReport{DryRun: dryRun, Rows: make([]RowResult, len(rows))}
	if len(rows) > MaxImportRows {
		return rep, &ValidationError{Fields: FieldErrors{"rows": fmt.Sprintf("at most %d rows per request, got %d", MaxImportRows, len(rows))}}
	}
	valid := make([]validated, len(rows))
	ok := make([]bool, len(rows))
	dup := DuplicateIDs(rows)
	for i, r := range rows {
		res := &rep.Rows[i]
		res.Row, res.ID = r.Row, strings.TrimSpace(r.ID)
		v, bad := r.validate(s.policy())
		bad = s.checkNetworks(ctx, v, bad)
		if first, ok := dup[i]; ok {
			markDuplicate(bad, first)
		}
		if len(bad) > 0 {
			res.Outcome, res.Fields, res.Error = Failed, bad, bad.String()
			continue
		}
		valid[i], ok[i] = v, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for i := range rows {
		res := &rep.Rows[i]
		if ok[i] {
			_, out, dropped, err := s.putDropLocked(ctx, valid[i], dryRun, slog.LevelDebug)
			res.PasswordDropped = dropped
			switch {
			case errors.Is(err, ErrReadOnly):
				res.Outcome, res.Fields = Failed, FieldErrors{"id": "declared in the configuration file: read-only through the API"}
				res.Error = res.Fields.String()
			case errors.As(err, new(*ValidationError)):
				var ve *ValidationError
				errors.As(err, &ve)
				res.Outcome, res.Fields, res.Error = Failed, ve.Fields, ve.Fields.String()
			case err != nil:
				if changed && !dryRun {
					// Apply what was written before the failure.
					err = errors.Join(err, s.applyLocked(context.WithoutCancel(ctx)))
				}
				return rep, fmt.Errorf("import row %d: %w", rows[i].Row, err)
			default:
				res.Outcome = out
				changed = changed || out == Created || out == Updated
			}
		}
		switch res.Outcome {
		case Created:
			rep.Created++
		case Updated:
			rep.Updated++
		case Unchanged:
			rep.Unchanged++
		default:
			rep.Failed++
		}
	}
	if !dryRun {
		s.log().Info("cameras imported", "rows", len(rows), "created", rep.Created, "updated", rep.Updated,
			"unchanged", rep.Unchanged, "failed", rep.Failed)
	}
	if changed && !dryRun {
		if err := s.applyLocked(ctx); err != nil {
			return rep, err
		}
	}
	return rep, nil
}
