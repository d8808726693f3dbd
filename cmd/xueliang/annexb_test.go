package main

import (
	"bytes"
	"testing"
)

func TestSplitAnnexB(t *testing.T) {
	in := []byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 0, 0, 3, 1}
	got := splitAnnexB(in)
	want := [][]byte{{0x67, 1, 2}, {0x68, 3}, {0x65, 0, 0, 3, 1}}
	if len(got) != len(want) {
		t.Fatalf("got %d NAL units %x", len(got), got)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("NAL %d: %x, want %x", i, got[i], want[i])
		}
	}
}
