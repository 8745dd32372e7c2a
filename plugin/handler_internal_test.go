package plugin

import (
	"testing"
	"unicode/utf8"
)

func TestTruncateUTF8(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is two bytes: never split
		{"日本語", 4, "日"},
		{"a\xffb", 10, "a\uFFFDb"},
	} {
		got := truncateUTF8(tt.in, tt.n)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("truncateUTF8(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestJourneyIDSerializer(t *testing.T) {
	var s journeyIDSerializer
	raw, err := s.Serialize(map[any]any{"id": "0193a0b1c2d3abc"})
	if err != nil || string(raw) != "0193a0b1c2d3abc" {
		t.Fatalf("Serialize = %q, %v", raw, err)
	}
	var back map[any]any
	if err := s.Deserialize(raw, &back); err != nil || back["id"] != "0193a0b1c2d3abc" || len(back) != 1 {
		t.Fatalf("Deserialize = %v, %v", back, err)
	}
	for _, bad := range []any{map[any]any{"id": 7}, map[any]any{"id": "x", "other": "y"}, map[any]any{}, "id"} {
		if _, err := s.Serialize(bad); err == nil {
			t.Errorf("Serialize(%v) accepted", bad)
		}
	}
	if err := s.Deserialize(raw, &[]byte{}); err == nil {
		t.Error("Deserialize into a wrong type accepted")
	}
}
