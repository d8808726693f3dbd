package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type head struct{ rs *records }

func (h head) AuditHead(context.Context) (int64, string, error) {
	if len(*h.rs) == 0 {
		return 0, "", nil
	}
	last := (*h.rs)[len(*h.rs)-1]
	return last.ID, last.Hash, nil
}

// TestAnchor (issue #22.7): the anchorer writes a signed head at start and
// when the head moved; VerifyAnchored accepts the log it anchored plus
// later entries and refuses a cut tail, a rewritten chain and a forged
// anchor.
func TestAnchor(t *testing.T) {
	dir := t.TempDir()
	key, created, err := LoadOrCreateKey(filepath.Join(dir, "keys", "audit.key"))
	if err != nil || !created {
		t.Fatal(created, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "keys", "audit.key")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %#o", fi.Mode().Perm())
	}
	if again, created, err := LoadOrCreateKey(filepath.Join(dir, "keys", "audit.key")); err != nil || created || string(again) != string(key) {
		t.Fatalf("reload: %v %v", created, err)
	}
	rs := records(chain(10))
	path := filepath.Join(dir, "audit.anchor")
	an := &Anchorer{Head: head{&rs}, Key: key, Path: path, Interval: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- an.Run(ctx) }()
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a, err := ReadAnchor(path)
	if err != nil || a.ID != 10 || a.Hash != rs[9].Hash || !a.Valid(key) {
		t.Fatalf("anchor %+v %v", a, err)
	}

	more := records(chain(12))
	if n, _, err := VerifyAnchored(context.Background(), more, a, key); err != nil || n != 12 {
		t.Fatalf("longer log: %d %v", n, err)
	}
	var ae *AnchorError
	if _, _, err := VerifyAnchored(context.Background(), rs[:7], a, key); !errors.As(err, &ae) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("cut tail: %v", err)
	}
	rewritten := records(chain(10))
	rewritten[4].Status = 403
	for i := 4; i < len(rewritten); i++ {
		rewritten[i].PrevHash = rewritten[i-1].Hash
		Seal(&rewritten[i])
	}
	if _, _, err := Verify(context.Background(), rewritten); err != nil {
		t.Fatalf("the rewritten chain verifies by itself: %v", err)
	}
	if _, _, err := VerifyAnchored(context.Background(), rewritten, a, key); !errors.As(err, &ae) || !strings.Contains(err.Error(), "rewritten") {
		t.Fatalf("rewritten chain: %v", err)
	}
	forged := a
	forged.ID, forged.Hash = 7, rs[6].Hash
	if _, _, err := VerifyAnchored(context.Background(), rs[:7], forged, key); !errors.As(err, &ae) || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("forged anchor: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, "keys", "audit.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKey(filepath.Join(dir, "keys", "audit.key")); err == nil {
		t.Fatal("a key others may read was accepted")
	}
}
