package cameras

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// CSVColumns are the columns of an import file, by header name.
var CSVColumns = []string{"id", "name", "township", "village", "lat", "lon", "main_url", "sub_url",
	"username", "password", "transport", "enabled", "motion", "segment_duration"}

// ReadCSV reads an import file: a header row naming columns (any order, any
// subset of CSVColumns that includes id; a UTF-8 byte order mark is
// ignored), then one camera per row. Row numbers are the file's line
// numbers. Rows that cannot be read (a malformed quote, a wrong number of
// fields) are returned as failures and the rest is still read; an error
// means the header itself is unusable. Every field is trimmed except the
// password, which is taken as written (spaces are allowed).
func ReadCSV(r io.Reader) ([]ImportRow, []RowResult, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("read header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(CSVColumns, h) {
			return nil, nil, fmt.Errorf("header: unknown column %q (want some of %s)", truncate(h), strings.Join(CSVColumns, ","))
		}
		if _, dup := col[h]; dup {
			return nil, nil, fmt.Errorf("header: column %q twice", h)
		}
		col[h] = i
	}
	if _, ok := col["id"]; !ok {
		return nil, nil, errors.New("header: no id column")
	}
	var rows []ImportRow
	var bad []RowResult
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad = append(bad, RowResult{Row: pe.StartLine, Outcome: Failed,
					Error: fmt.Sprintf("csv: line %d, column %d: %v", pe.Line, pe.Column, pe.Err)})
				continue
			}
			return nil, nil, err
		}
		line, _ := cr.FieldPos(0)
		raw := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		get := func(name string) string { return strings.TrimSpace(raw(name)) }
		if len(rec) != len(header) {
			bad = append(bad, RowResult{Row: line, ID: get("id"), Outcome: Failed,
				Error: fmt.Sprintf("row has %d fields, the header %d", len(rec), len(header))})
			continue
		}
		rows = append(rows, ImportRow{
			Row: line, ID: get("id"), Name: get("name"), Township: get("township"), Village: get("village"),
			Lat: get("lat"), Lon: get("lon"), MainURL: get("main_url"), SubURL: get("sub_url"),
			Username: get("username"), Password: raw("password"),
			Transport: get("transport"), Enabled: get("enabled"), Motion: get("motion"),
			SegmentDuration: get("segment_duration"),
		})
	}
	return rows, bad, nil
}
