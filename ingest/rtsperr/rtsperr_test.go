package rtsperr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

func TestClassify(t *testing.T) {
	_, dialErr := (&net.Dialer{Timeout: time.Second}).DialContext(context.Background(), "tcp", "127.0.0.1:1")
	if dialErr == nil {
		t.Fatal("dial to port 1 succeeded")
	}
	readTimeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, Other},
		{"refused", fmt.Errorf("describe: %w", dialErr), Unreachable},
		{"dial error marked", fmt.Errorf("describe: %w", DialError{errors.New("no route")}), Unreachable},
		{"dns", &net.DNSError{Err: "no such host", Name: "cam.invalid"}, Unreachable},
		{"401", fmt.Errorf("describe: %w", liberrors.ErrClientBadStatusCode{Code: base.StatusUnauthorized}), Unauthorized},
		{"403", liberrors.ErrClientBadStatusCode{Code: base.StatusForbidden}, Unauthorized},
		{"404", liberrors.ErrClientBadStatusCode{Code: base.StatusNotFound}, NotFound},
		{"500", liberrors.ErrClientBadStatusCode{Code: base.StatusInternalServerError}, Other},
		{"request timed out", liberrors.ErrClientRequestTimedOut{}, Timeout},
		{"tcp timeout", fmt.Errorf("stream: %w", liberrors.ErrClientTCPTimeout{}), Timeout},
		{"udp timeout", liberrors.ErrClientUDPTimeout{}, Timeout},
		{"read deadline", readTimeout, Timeout},
		{"eof", fmt.Errorf("stream: %w", errors.New("EOF")), Other},
		// Text is not evidence.
		{"timeout in text only", errors.New("camera said: timeout"), Other},
		{"terminated", liberrors.ErrClientTerminated{}, Other},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestRedactor(t *testing.T) {
	r := NewRedactor("rtsp://admin:p%40ss%2Fw0rd@10.0.0.7:554/Streaming/101", "extra secret")
	if got, want := r.URL(), "rtsp://admin:xxxxx@10.0.0.7:554/Streaming/101"; got != want {
		t.Errorf("URL() = %q, want %q", got, want)
	}
	for _, s := range []string{
		"auth failed for p@ss/w0rd",
		"dial rtsp://admin:p%40ss%2Fw0rd@10.0.0.7:554",
		"path p@ss%2Fw0rd",
		"the extra secret leaked",
	} {
		got := r.Err(errors.New(s))
		for _, leak := range []string{"p@ss/w0rd", "p%40ss%2Fw0rd", "p@ss%2Fw0rd", "extra secret"} {
			if strings.Contains(got, leak) {
				t.Errorf("Err(%q) = %q still contains %q", s, got, leak)
			}
		}
		if !strings.Contains(got, "xxxxx") {
			t.Errorf("Err(%q) = %q: nothing replaced", s, got)
		}
	}
	if r.Err(nil) != "" {
		t.Error("Err(nil) not empty")
	}
	if got := NewRedactor("::bad").URL(); got != "<invalid url>" {
		t.Errorf("invalid URL rendered as %q", got)
	}
	if got := NewRedactor("rtsp://10.0.0.7/live").Err(errors.New("eof")); got != "eof" {
		t.Errorf("no secret: %q", got)
	}
}
