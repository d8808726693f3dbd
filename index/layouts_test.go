package index

import (
	"context"
	"errors"
	"testing"
	"time"
)

// testLayouts: layouts are per user (another user's of the same name is a
// different row), a put replaces, a delete removes only its own.
func testLayouts(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	at := time.Unix(1_700_000_000, 123).UTC()
	for _, l := range []Layout{
		{User: "li", Name: "值班", JSON: `{"grid":4}`, Updated: at},
		{User: "li", Name: "a", JSON: `{"grid":1}`, Updated: at},
		{User: "wang", Name: "值班", JSON: `{"grid":9}`, Updated: at},
	} {
		if created, err := db.PutLayout(ctx, l); err != nil || !created {
			t.Fatalf("put %+v: created %v, %v", l, created, err)
		}
	}
	if created, err := db.PutLayout(ctx, Layout{User: "li", Name: "值班", JSON: `{"grid":16}`, Updated: at.Add(time.Second)}); err != nil || created {
		t.Fatalf("replace: created %v, %v", created, err)
	}
	if _, err := db.PutLayout(ctx, Layout{User: "li"}); err == nil {
		t.Error("a layout without a name was stored")
	}
	ls, err := db.Layouts(ctx, "li")
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || ls[0].Name != "a" || ls[1].Name != "值班" || ls[1].JSON != `{"grid":16}` || !ls[1].Updated.Equal(at.Add(time.Second)) {
		t.Fatalf("li's layouts %+v", ls)
	}
	if l, err := db.Layout(ctx, "wang", "值班"); err != nil || l.JSON != `{"grid":9}` || !l.Updated.Equal(at) {
		t.Fatalf("wang's layout %+v, %v", l, err)
	}
	if _, err := db.Layout(ctx, "wang", "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("wang's layout a: %v", err)
	}
	if err := db.DeleteLayout(ctx, "wang", "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete a layout wang does not have: %v", err)
	}
	if err := db.DeleteLayout(ctx, "li", "值班"); err != nil {
		t.Fatal(err)
	}
	if l, err := db.Layout(ctx, "wang", "值班"); err != nil || l.JSON != `{"grid":9}` {
		t.Fatalf("wang's layout after li deleted hers: %+v, %v", l, err)
	}
	if ls, err := db.Layouts(ctx, "li"); err != nil || len(ls) != 1 || ls[0].Name != "a" {
		t.Fatalf("li's layouts after the delete: %+v, %v", ls, err)
	}
	if ls, err := db.Layouts(ctx, "nobody"); err != nil || len(ls) != 0 {
		t.Fatalf("nobody's layouts: %+v, %v", ls, err)
	}
	// Deleting a user deletes their layouts, no one else's.
	if err := db.CreateUser(ctx, User{Name: "li", Role: "operator", PasswordHash: "$argon2id$x", Created: at}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteUser(ctx, "li"); err != nil {
		t.Fatal(err)
	}
	if ls, err := db.Layouts(ctx, "li"); err != nil || len(ls) != 0 {
		t.Fatalf("a deleted user's layouts: %+v, %v", ls, err)
	}
	if ls, err := db.Layouts(ctx, "wang"); err != nil || len(ls) != 1 {
		t.Fatalf("wang's layouts after li was deleted: %+v, %v", ls, err)
	}
}
