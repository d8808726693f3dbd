package api

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLiveTickets(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := &Server{Now: func() time.Time { return now }, TicketKey: []byte("0123456789abcdef0123456789abcdef")}
	tk := s.signTicket(ticket{User: "zhao", Role: "operator", Townships: []string{"Huiting"}, Camera: "cam1", Expires: now.Add(30 * time.Second).Unix()})
	p, err := s.verifyTicket(tk, "cam1", "")
	if err != nil || p.User != "zhao" || p.Role != "operator" || len(p.Townships) != 1 || p.Townships[0] != "Huiting" {
		t.Fatalf("valid ticket: %+v %v", p, err)
	}
	body, sig, _ := strings.Cut(tk, ".")
	other := &Server{Now: s.Now, TicketKey: []byte("another key of thirty-two bytes!")}
	later := &Server{Now: func() time.Time { return now.Add(31 * time.Second) }, TicketKey: s.TicketKey}
	for _, tc := range []struct {
		name, ticket, camera string
		s                    *Server
	}{
		{"other camera", tk, "cam2", s},
		{"expired", tk, "cam1", later},
		{"other key", tk, "cam1", other},
		{"body changed", "x" + body[1:] + "." + sig, "cam1", s},
		{"signature changed", body + "." + strings.Repeat("A", len(sig)), "cam1", s},
		{"no signature", body, "cam1", s},
		{"empty", "", "cam1", s},
	} {
		if _, err := tc.s.verifyTicket(tc.ticket, tc.camera, ""); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestAuditPathRedactsTicket(t *testing.T) {
	r := httptest.NewRequest("GET", "/api/v1/cameras/cam1/live?stream=main&ticket=secret.sig", nil)
	if p := auditPath(r); strings.Contains(p, "secret") || !strings.Contains(p, "stream=main") || !strings.Contains(p, "ticket=redacted") {
		t.Fatalf("audit path %q", p)
	}
}

// FuzzVerifyTicket: a ticket is untrusted input; only the signed one is
// accepted, and nothing panics.
func FuzzVerifyTicket(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	s := &Server{Now: func() time.Time { return now }, TicketKey: []byte("0123456789abcdef0123456789abcdef")}
	good := s.signTicket(ticket{User: "u", Role: "operator", Camera: "cam1", Expires: now.Add(time.Minute).Unix()})
	for _, seed := range []string{good, "", ".", "a.b", good + "x", "e30.AAAA"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := s.verifyTicket(raw, "cam1", ""); err == nil && raw != good {
			t.Fatalf("accepted %q", raw)
		}
	})
}
