package camnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
)

func mustPrefixes(t *testing.T, s ...string) []netip.Prefix {
	t.Helper()
	p, err := ParsePrefixes(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	noLocal := func() ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.ParseIP("10.0.0.5"), Mask: net.CIDRMask(24, 32)}}, nil
	}
	def := &Policy{Allowed: DefaultAllowed(), OwnPorts: []uint16{8080}, LocalAddrs: noLocal}
	all := &Policy{Allowed: mustPrefixes(t, "0.0.0.0/0", "::/0"), OwnPorts: []uint16{8080}, LocalAddrs: noLocal}
	lo := &Policy{Allowed: mustPrefixes(t, "10.0.0.0/8", "127.0.0.0/8"), OwnPorts: []uint16{8080}, LocalAddrs: noLocal}
	for _, tc := range []struct {
		name string
		p    *Policy
		addr string
		ok   bool
	}{
		{"private 10/8", def, "10.1.2.3:554", true},
		{"private 172.16/12", def, "172.31.0.1:554", true},
		{"private 192.168/16", def, "192.168.1.64:554", true},
		{"public by default", def, "203.0.113.9:554", false},
		{"loopback by default", def, "127.0.0.1:8554", false},
		{"metadata by default", def, "169.254.169.254:80", false},
		{"mapped loopback", def, "[::ffff:127.0.0.1]:554", false},
		{"ipv6 loopback", def, "[::1]:554", false},
		{"unspecified", all, "0.0.0.0:554", false},
		{"multicast", all, "239.0.0.1:554", false},
		{"everything allowed: public", all, "203.0.113.9:554", true},
		{"everything allowed: still not loopback", all, "127.0.0.1:554", false},
		{"everything allowed: still not metadata", all, "169.254.169.254:80", false},
		{"everything allowed: still not ipv6 link-local", all, "[fe80::1]:554", false},
		{"loopback allowed explicitly", lo, "127.0.0.1:8554", true},
		{"own port on loopback", lo, "127.0.0.1:8080", false},
		{"own port on an interface address", lo, "10.0.0.5:8080", false},
		{"own port on another host", lo, "10.0.0.6:8080", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Check(netip.MustParseAddrPort(tc.addr))
			if (err == nil) != tc.ok {
				t.Fatalf("Check(%s) = %v, want allowed=%v", tc.addr, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrRefused) {
				t.Fatalf("%v does not wrap ErrRefused", err)
			}
		})
	}
	if def.Refused() == 0 {
		t.Error("refusals not counted")
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{"10.1.2.3/8", "192.168.1.7", "::ffff:127.0.0.0/104"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.168.1.7/32", "127.0.0.0/8"}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, got[i], want[i])
		}
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/33", "camera.local"}); err == nil {
		t.Error("bad CIDRs accepted")
	}
}

// TestDialControl: the dialer refuses a loopback listener unless allowed,
// and a host name is checked after resolution (localhost is loopback).
func TestDialControl(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx := context.Background()
	def := &Policy{Allowed: DefaultAllowed()}
	for _, addr := range []string{ln.Addr().String(), net.JoinHostPort("localhost", port)} {
		if c, err := def.Dialer().DialContext(ctx, "tcp", addr); !errors.Is(err, ErrRefused) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("dial %s with the default policy: %v, want refused", addr, err)
		}
	}
	lo := &Policy{Allowed: mustPrefixes(t, "127.0.0.0/8")}
	c, err := lo.Dialer().DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with 127.0.0.0/8 allowed: %v", err)
	}
	c.Close()
	own := &Policy{Allowed: mustPrefixes(t, "127.0.0.0/8"), OwnPorts: []uint16{mustPort(t, port)}}
	if _, err := own.Dialer().DialContext(ctx, "tcp", ln.Addr().String()); !errors.Is(err, ErrRefused) {
		t.Fatalf("dial of the server's own port: %v, want refused", err)
	}
}

func mustPort(t *testing.T, s string) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort("127.0.0.1:" + s)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	p := &Policy{Allowed: DefaultAllowed(), LookupNetIP: func(_ context.Context, _, host string) ([]netip.Addr, error) {
		switch host {
		case "cam.example":
			return []netip.Addr{netip.MustParseAddr("10.0.0.9")}, nil
		case "evil.example":
			return []netip.Addr{netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("169.254.169.254")}, nil
		}
		return nil, errors.New("no such host")
	}}
	for raw, ok := range map[string]bool{
		"rtsp://10.0.0.1/main":          true,
		"rtsp://127.0.0.1:8554/main":    false,
		"rtsp://cam.example/main":       true,
		"rtsp://evil.example/main":      false,
		"rtsp://unresolvable.test/main": true, // checked when dialled
		"rtsps://[::1]/x":               false,
	} {
		if err := p.CheckURL(ctx, raw); (err == nil) != ok {
			t.Errorf("CheckURL(%s) = %v, want allowed=%v", raw, err, ok)
		}
	}
}
