package sqlcol

import (
	"testing"
	"time"
)

func TestTime(t *testing.T) {
	var got time.Time
	want := time.Date(2026, 12, 7, 4, 5, 6, 789000, time.UTC)
	for _, src := range []any{want.UnixMicro(), want.In(time.FixedZone("x", 3600))} {
		if err := Time(&got).Scan(src); err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("Scan(%v): %v, %v; want %v in UTC", src, got, err, want)
		}
	}
	if err := Time(&got).Scan(nil); err != nil || !got.IsZero() {
		t.Errorf("Scan(nil): %v, %v; want the zero time", got, err)
	}
	if err := Time(&got).Scan("2026-12-07"); err == nil {
		t.Error("Scan of text: no error")
	}
}

func TestString(t *testing.T) {
	got := "old"
	for src, want := range map[any]string{"a": "a", nil: ""} {
		if err := String(&got).Scan(src); err != nil || got != want {
			t.Errorf("Scan(%v): %q, %v; want %q", src, got, err, want)
		}
	}
	if err := String(&got).Scan([]byte("b")); err != nil || got != "b" {
		t.Errorf("Scan([]byte): %q, %v", got, err)
	}
	if err := String(&got).Scan(int64(1)); err == nil {
		t.Error("Scan of a number: no error")
	}
}
