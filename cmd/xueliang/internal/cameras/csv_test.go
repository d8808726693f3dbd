package cameras

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

func TestReadCSV(t *testing.T) {
	in := "\ufeffID, Name,township,village,password,main_url\n" +
		"41142600001320000001,村口,会亭镇,张庄村, pw ,rtsp://10.0.0.1/main\n" +
		"41142600001320000002,\"two\nlines\",会亭镇,张庄村,\" lead\",rtsp://10.0.0.2/main\n" +
		"41142600001320000003,short\n" +
		"41142600001320000004,a\"b,会亭镇,张庄村,,rtsp://10.0.0.4/main\n" +
		"41142600001320000005,五,会亭镇,张庄村,,rtsp://10.0.0.5/main\n"
	rows, bad, err := ReadCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || len(bad) != 2 {
		t.Fatalf("rows %+v, failures %+v", rows, bad)
	}
	want := []ImportRow{
		{Row: 2, ID: "41142600001320000001", Name: "村口", Township: "会亭镇", Village: "张庄村", Password: "pw ", MainURL: "rtsp://10.0.0.1/main"},
		{Row: 3, ID: "41142600001320000002", Name: "two\nlines", Township: "会亭镇", Village: "张庄村", Password: " lead", MainURL: "rtsp://10.0.0.2/main"},
		{Row: 7, ID: "41142600001320000005", Name: "五", Township: "会亭镇", Village: "张庄村", MainURL: "rtsp://10.0.0.5/main"},
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, rows[i], want[i])
		}
	}
	if bad[0].Row != 5 || bad[0].ID != "41142600001320000003" || !strings.Contains(bad[0].Error, "2 fields, the header 6") {
		t.Errorf("short row: %+v", bad[0])
	}
	if bad[1].Row != 6 || !strings.Contains(bad[1].Error, "line 6, column") || !strings.Contains(bad[1].Error, `bare "`) {
		t.Errorf("bad quote: %+v", bad[1])
	}

	for _, c := range []struct{ in, err string }{
		{"", "read header"},
		{"name,village\n", "no id column"},
		{"id,colour\n", `unknown column "colour"`},
		{"id,ID\n", `column "id" twice`},
	} {
		if _, _, err := ReadCSV(strings.NewReader(c.in)); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want %q", c.in, err, c.err)
		}
	}
}

// FuzzReadCSV feeds the installer's import reader arbitrary files: it must
// not panic, must number rows by line, trim every field but the password,
// and read back exactly what csv.Writer writes of its rows.
func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("id,name,township,village,main_url\n41142600001320000001,x,y,z,rtsp://h/p\n"))
	f.Add([]byte("\ufeffid,password\n1,\" a \"\n2,\"x\ny\"\n3,a\"b\n4\n"))
	f.Add([]byte("id\n\"unterminated\n"))
	f.Add([]byte(strings.Join(CSVColumns, ",") + "\n" + strings.Repeat(",", len(CSVColumns)-1) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, bad, err := ReadCSV(bytes.NewReader(data))
		if err != nil {
			if rows != nil || bad != nil {
				t.Fatalf("error %v with %d rows, %d failures", err, len(rows), len(bad))
			}
			return
		}
		last := 1
		for _, r := range rows {
			if r.Row <= last {
				t.Fatalf("row numbered %d after %d", r.Row, last)
			}
			last = r.Row
			for _, s := range []string{r.ID, r.Name, r.Township, r.Village, r.Lat, r.Lon, r.MainURL, r.SubURL,
				r.Username, r.Transport, r.Enabled, r.Motion, r.SegmentDuration} {
				if s != strings.TrimSpace(s) {
					t.Fatalf("untrimmed field %q", s)
				}
			}
		}
		for _, b := range bad {
			if b.Row < 2 || b.Outcome != Failed || b.Error == "" {
				t.Fatalf("failure %+v", b)
			}
		}
		// Round trip: what the writer makes of the rows reads back the same.
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.Write(CSVColumns)
		for _, r := range rows {
			w.Write([]string{r.ID, r.Name, r.Township, r.Village, r.Lat, r.Lon, r.MainURL, r.SubURL,
				r.Username, r.Password, r.Transport, r.Enabled, r.Motion, r.SegmentDuration})
		}
		w.Flush()
		again, bad2, err := ReadCSV(&buf)
		if err != nil || len(bad2) != 0 || len(again) != len(rows) {
			t.Fatalf("round trip: %v, %d failures %+v, %d rows of %d", err, len(bad2), bad2, len(again), len(rows))
		}
		for i := range rows {
			a, b := rows[i], again[i]
			a.Row, b.Row = 0, 0
			if a != b {
				t.Fatalf("round trip of row %d:\n got %+v\nwant %+v", i, b, a)
			}
		}
	})
}
