package api

import (
	"math"
	"sync"
	"time"
)

// LoginThrottle holds failed logins back per account and per client
// address with exponential backoff: after Free failures of a key, each
// further failure locks it for Base·2^(failures−Free−1), at most Max. While
// a key is locked, a login for it is answered 429 with Retry-After without
// checking the password (so a correct guess cannot be confirmed either). A
// key's failures are forgotten Forget after its last one, and a successful
// login clears its account. Fill the fields; zero values take
// the defaults of LoginThrottleDefaults.
type LoginThrottle struct {
	// Free is the number of failures of an account allowed without delay.
	// It defaults to 5 (an address gets FreePerAddress).
	Free int
	// FreePerAddress is the number of failures from one client address
	// allowed without delay (an address may serve several users behind a
	// NAT). It defaults to 20.
	FreePerAddress int
	// Base is the first lockout. It defaults to 1s.
	Base time.Duration
	// Max caps a lockout. It defaults to 15m.
	Max time.Duration
	// Forget drops a key's failures after this long without one. It
	// defaults to 1h.
	Forget time.Duration
	// MaxKeys bounds the keys remembered (accounts + addresses); when full,
	// forgotten keys are dropped, then an arbitrary eighth. It defaults to
	// 100000.
	MaxKeys int

	mu   sync.Mutex
	keys map[string]*throttleKey
}

// LoginThrottleDefaults is the server's throttle configuration (a
// LoginThrottle's zero fields take these values).
var LoginThrottleDefaults = struct {
	Free, FreePerAddress int
	Base, Max, Forget    time.Duration
	MaxKeys              int
}{Free: 5, FreePerAddress: 20, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour, MaxKeys: 100000}

type throttleKey struct {
	failures int
	last     time.Time // last failure
	until    time.Time // locked until
}

func (t *LoginThrottle) defaults() {
	d := LoginThrottleDefaults
	if t.Free <= 0 {
		t.Free = d.Free
	}
	if t.FreePerAddress <= 0 {
		t.FreePerAddress = d.FreePerAddress
	}
	if t.Base <= 0 {
		t.Base = d.Base
	}
	if t.Max <= 0 {
		t.Max = d.Max
	}
	if t.Forget <= 0 {
		t.Forget = d.Forget
	}
	if t.MaxKeys <= 0 {
		t.MaxKeys = d.MaxKeys
	}
	if t.keys == nil {
		t.keys = map[string]*throttleKey{}
	}
}

func accountKey(user string) string { return "u:" + user }
func addressKey(addr string) string { return "a:" + addr }

// Check returns how long a login for user from addr must wait (0: go on).
func (t *LoginThrottle) Check(now time.Time, user, addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.defaults()
	var wait time.Duration
	for _, k := range []string{accountKey(user), addressKey(addr)} {
		if e := t.keys[k]; e != nil && now.Before(e.until) {
			wait = max(wait, e.until.Sub(now))
		}
	}
	return wait
}

// Fail records a failed login for user from addr.
func (t *LoginThrottle) Fail(now time.Time, user, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.defaults()
	t.fail(now, accountKey(user), t.Free)
	t.fail(now, addressKey(addr), t.FreePerAddress)
}

func (t *LoginThrottle) fail(now time.Time, key string, free int) {
	e := t.keys[key]
	if e != nil && now.Sub(e.last) > t.Forget {
		e = nil
	}
	if e == nil {
		if len(t.keys) >= t.MaxKeys {
			t.evict(now)
		}
		e = &throttleKey{}
		t.keys[key] = e
	}
	e.failures++
	e.last = now
	if over := e.failures - free; over > 0 {
		d := t.Max
		if over <= 40 {
			d = time.Duration(math.Min(float64(t.Base)*math.Pow(2, float64(over-1)), float64(t.Max)))
		}
		e.until = now.Add(d)
	}
}

// evict drops forgotten keys and, when that is not enough, an arbitrary
// eighth of the others (map order), so that the walk is paid once per
// MaxKeys/8 new keys, not per failure, under a flood of addresses.
func (t *LoginThrottle) evict(now time.Time) {
	for k, e := range t.keys {
		if now.Sub(e.last) > t.Forget && !now.Before(e.until) {
			delete(t.keys, k)
		}
	}
	if len(t.keys) < t.MaxKeys {
		return
	}
	drop := max(1, t.MaxKeys/8)
	for k := range t.keys {
		if drop == 0 {
			break
		}
		delete(t.keys, k)
		drop--
	}
}

// Succeed clears user's failures. The address keeps its own: a successful
// login to the attacker's own account does not reset its guessing budget.
func (t *LoginThrottle) Succeed(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.defaults()
	delete(t.keys, accountKey(user))
}
