package miniotest

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func live(t *testing.T, s *Server) error {
	t.Helper()
	c := s.httpClient()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/minio/health/live", nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health: status %d", resp.StatusCode)
	}
	return nil
}

func TestStartStopRestart(t *testing.T) {
	tests := []struct {
		name  string
		start func(testing.TB) *Server
	}{
		{"http", Start},
		{"https", StartTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.start(t)
			if s.Endpoint == "" || s.AccessKey == "" || len(s.SecretKey) < 8 {
				t.Fatalf("server = %+v", s)
			}
			if (s.CAFile != "") != s.Secure {
				t.Fatalf("Secure %v with CAFile %q", s.Secure, s.CAFile)
			}
			if err := live(t, s); err != nil {
				t.Fatalf("not live after Start: %v", err)
			}
			endpoint := s.Endpoint
			s.Stop()
			s.Stop()
			if err := live(t, s); err == nil {
				t.Fatal("live after Stop")
			}
			s.Restart()
			s.Restart()
			if s.Endpoint != endpoint {
				t.Fatalf("endpoint moved from %s to %s", endpoint, s.Endpoint)
			}
			if err := live(t, s); err != nil {
				t.Fatalf("not live after Restart: %v", err)
			}
		})
	}
}
