// Package camnet decides which network addresses the server may connect to
// as an RTSP client (recording and probing cameras): an allow-list of
// networks (CIDRs), against server-side request forgery by someone who can
// register or probe a camera URL.
//
// An address is allowed when it is in one of Policy.Allowed. Loopback and
// link-local addresses (169.254.0.0/16 with the cloud metadata service
// 169.254.169.254, fe80::/10) are refused unless a prefix of Allowed covers
// them explicitly; unspecified, multicast and broadcast addresses are
// always refused, and so are the server's own listening ports on the
// server's own addresses (it would talk to itself).
//
// The check runs at dial time, in net.Dialer.Control (Policy.Control),
// after name resolution and for every address tried, so a hostname that
// resolves to an allowed address when the camera is registered and to
// 169.254.169.254 later (DNS rebinding), or an RTSP redirect, is refused
// too. CheckURL is the same check at validation time, to answer a client
// with a field error instead of a failed connection.
package camnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
)

// ErrRefused is wrapped by every refusal.
var ErrRefused = errors.New("camera address not allowed")

// RefusedError names the refused address and why.
type RefusedError struct {
	Addr   netip.AddrPort
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%v: %s %s", ErrRefused, e.Reason, e.Addr)
}

// Unwrap returns ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// DefaultAllowed are the networks allowed when the configuration names
// none: the private IPv4 ranges of RFC 1918.
func DefaultAllowed() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
	}
}

// ParsePrefixes parses CIDRs ("10.0.0.0/8", or a single address, which is
// a /32 or /128), reporting each bad one.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("%q is not a CIDR (10.0.0.0/8) or an address", s))
				continue
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}

var (
	loopback4  = netip.MustParsePrefix("127.0.0.0/8")
	linkLocal4 = netip.MustParsePrefix("169.254.0.0/16")
	thisNet4   = netip.MustParsePrefix("0.0.0.0/8")
)

// Policy is the allow-list. Its methods are safe for concurrent use; do not
// change the fields once it is in use.
type Policy struct {
	// Allowed are the networks cameras may be in.
	Allowed []netip.Prefix
	// OwnPorts are the server's listening TCP ports: refused on the
	// server's own addresses (loopback, unspecified, LocalAddrs).
	OwnPorts []uint16
	// LocalAddrs returns the addresses of this host's interfaces. It
	// defaults to net.InterfaceAddrs.
	LocalAddrs func() ([]net.Addr, error)
	// LookupNetIP resolves a host name for CheckURL. It defaults to
	// net.DefaultResolver.LookupNetIP.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)

	refused atomic.Int64
}

// Refused is the number of connections and URLs refused so far.
func (p *Policy) Refused() int64 { return p.refused.Load() }

// Check returns nil when ap may be dialled, a *RefusedError otherwise.
func (p *Policy) Check(ap netip.AddrPort) error {
	if err := p.check(ap); err != nil {
		p.refused.Add(1)
		return err
	}
	return nil
}

func (p *Policy) check(ap netip.AddrPort) error {
	a := ap.Addr().Unmap().WithZone("")
	ap = netip.AddrPortFrom(a, ap.Port())
	refuse := func(reason string) error { return &RefusedError{Addr: ap, Reason: reason} }
	switch {
	case !a.IsValid():
		return refuse("invalid address")
	case a.IsUnspecified() || thisNet4.Contains(a):
		return refuse("unspecified address")
	case a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return refuse("multicast or broadcast address")
	}
	if slices.Contains(p.OwnPorts, ap.Port()) && p.isLocal(a) {
		return refuse("the server's own port on a local address")
	}
	special := specialRange(a) // loopback or link-local
	in, explicit := false, false
	for _, pr := range p.Allowed {
		if pr.Contains(a) {
			in = true
			// Only a prefix inside the special range opens it:
			// 0.0.0.0/0 does not open loopback or the metadata service.
			explicit = explicit || special.IsValid() && special.Bits() <= pr.Bits() && special.Contains(pr.Addr())
		}
	}
	switch {
	case !in:
		return refuse("address outside the allowed camera networks")
	case special.IsValid() && !explicit:
		return refuse("loopback or link-local address not allowed explicitly")
	}
	return nil
}

var specialRanges = []netip.Prefix{
	loopback4, linkLocal4, netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fe80::/10"),
}

// specialRange is the loopback or link-local range of a, if any.
func specialRange(a netip.Addr) netip.Prefix {
	for _, r := range specialRanges {
		if r.Contains(a) {
			return r
		}
	}
	return netip.Prefix{}
}

func (p *Policy) isLocal(a netip.Addr) bool {
	if a.IsLoopback() || loopback4.Contains(a) {
		return true
	}
	list := p.LocalAddrs
	if list == nil {
		list = net.InterfaceAddrs
	}
	addrs, err := list()
	if err != nil {
		return false
	}
	for _, la := range addrs {
		var ip net.IP
		switch v := la.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if na, ok := netip.AddrFromSlice(ip); ok && na.Unmap() == a {
			return true
		}
	}
	return false
}

// Control is a net.Dialer.Control: it refuses the connection to a
// disallowed address, after name resolution.
func (p *Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		p.refused.Add(1)
		return &RefusedError{Reason: "unparsable address"}
	}
	return p.Check(ap)
}

// Dialer returns a net.Dialer that applies the policy (Control).
func (p *Policy) Dialer() *net.Dialer {
	return &net.Dialer{Control: p.Control}
}

// CheckURL checks the host and port of an rtsp:// or rtsps:// URL (default
// ports 554 and 322). A host name is resolved and every address checked;
// a name that does not resolve now passes (the dial-time check still
// applies when it does).
func (p *Policy) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return nil // the caller's own validation reports it
	}
	port := 554
	if u.Scheme == "rtsps" {
		port = 322
	}
	if s := u.Port(); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 65535 {
			return nil
		}
		port = n
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lookup := p.LookupNetIP
		if lookup == nil {
			lookup = net.DefaultResolver.LookupNetIP
		}
		if addrs, err = lookup(ctx, "ip", u.Hostname()); err != nil {
			return nil
		}
	}
	for _, a := range addrs {
		if err := p.Check(netip.AddrPortFrom(a, uint16(port))); err != nil {
			return err
		}
	}
	return nil
}
