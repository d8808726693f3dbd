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

// TestDrives: a 4-drive server reports its drives online, a lost drive
// offline (the replacement of a drive is exercised by
// cmd/xueliang's TestErasureCodedMinIODriveLoss).
func TestDrives(t *testing.T) {
	s := StartDrives(t, 4)
	if len(s.Drives()) != 4 {
		t.Fatalf("drives %v", s.Drives())
	}
	health := func(what string, wantOn, wantOff int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			on, off, err := s.DriveHealth()
			if err == nil && on == wantOn && off == wantOff {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d online, %d offline (%v), want %d and %d", what, on, off, err, wantOn, wantOff)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	health("started", 4, 0)
	lost := time.Now()
	s.LoseDrive(2)
	health("drive lost", 3, 1)
	t.Logf("lost drive reported offline after %v", time.Since(lost).Round(time.Millisecond))
}
