// Package rtsperr classifies the failures of an RTSP client (gortsplib)
// from their types, never from their text, and keeps camera credentials
// out of what is reported about them. The pullers (ingest) and the camera
// probe (ingest/probe) share it, so a camera that fails the same way is
// reported the same way by both.
package rtsperr

import (
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// Kind is the class of an RTSP failure.
type Kind int

// Kinds, from the most specific evidence down.
const (
	// Other: any other failure (protocol error, SETUP or PLAY refused, the
	// stream ended).
	Other Kind = iota
	// Unreachable: the TCP connection could not be made (DNS, refused,
	// no route, dial timeout).
	Unreachable
	// Unauthorized: the camera answered 401 or 403.
	Unauthorized
	// NotFound: the camera answered 404 (wrong stream path).
	NotFound
	// Timeout: a request got no answer, or the stream sent no data, within
	// the client's timeouts.
	Timeout
)

func (k Kind) String() string {
	switch k {
	case Unreachable:
		return "unreachable"
	case Unauthorized:
		return "unauthorized"
	case NotFound:
		return "not_found"
	case Timeout:
		return "timeout"
	}
	return "other"
}

// DialError marks an error of the TCP dial: a dialer given to gortsplib
// returns its errors wrapped in it, so that Classify knows them whatever
// gortsplib wraps around them.
type DialError struct{ Err error }

func (e DialError) Error() string { return "dial: " + e.Err.Error() }
func (e DialError) Unwrap() error { return e.Err }

// Classify returns the kind of an error returned by a gortsplib client
// (Start, a request, Wait) or by its dialer.
func Classify(err error) Kind {
	var (
		de  DialError
		op  *net.OpError
		dns *net.DNSError
		bad liberrors.ErrClientBadStatusCode
		rto liberrors.ErrClientRequestTimedOut
		tto liberrors.ErrClientTCPTimeout
		uto liberrors.ErrClientUDPTimeout
		ne  net.Error
	)
	switch {
	case err == nil:
		return Other
	case errors.As(err, &de), errors.As(err, &dns), errors.As(err, &op) && op.Op == "dial":
		return Unreachable
	case errors.As(err, &bad) && (bad.Code == base.StatusUnauthorized || bad.Code == base.StatusForbidden):
		return Unauthorized
	case errors.As(err, &bad) && bad.Code == base.StatusNotFound:
		return NotFound
	case errors.As(err, &rto), errors.As(err, &tto), errors.As(err, &uto), errors.As(err, &ne) && ne.Timeout():
		return Timeout
	}
	return Other
}

// Redactor renders URLs and errors without a camera's password.
type Redactor struct {
	url     string
	secrets []string
}

// NewRedactor returns a redactor for rawURL: its password, and any
// passwords given (credentials kept apart from the URL), are replaced by
// "xxxxx" in every form they can appear in (plain, query- and
// path-escaped).
func NewRedactor(rawURL string, passwords ...string) Redactor {
	r := Redactor{url: "<invalid url>"}
	if u, err := url.Parse(rawURL); err == nil {
		r.url = u.Redacted()
		if pw, ok := u.User.Password(); ok {
			passwords = append(passwords, pw)
		}
	}
	for _, pw := range passwords {
		if pw != "" {
			r.secrets = append(r.secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	return r
}

// URL is the URL with its password replaced (url.URL.Redacted), or
// "<invalid url>".
func (r Redactor) URL() string { return r.url }

// String returns s with every secret replaced.
func (r Redactor) String(s string) string {
	for _, sec := range r.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

// Err renders err with every secret replaced; "" for nil.
func (r Redactor) Err(err error) string {
	if err == nil {
		return ""
	}
	return r.String(err.Error())
}
