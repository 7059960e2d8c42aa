package pg

import (
	"slices"
	"testing"
)

func TestSnapshotSees(t *testing.T) {
	for _, tc := range []struct {
		snap string
		xid  uint32
		want bool
	}{
		{"", 5, false}, // the zero snapshot sees nothing
		{"100:105:100,102", 99, true},
		{"100:105:100,102", 100, false}, // in progress then
		{"100:105:100,102", 101, true},
		{"100:105:100,102", 102, false},
		{"100:105:100,102", 104, true},
		{"100:105:100,102", 105, false}, // started after
		{"100:105:", 4000000000, false}, // far ahead: after, not long before
		// Epoch 1: the slot prints 32 bits; ids just before the epoch
		// turned are older, ids past xmax newer.
		{"4294967396:4294967400:", 100, true},            // 2^32+100
		{"4294967396:4294967400:", 104, false},           // 2^32+104 = xmax
		{"4294967396:4294967400:", 4294967290, true},     // epoch 0, before
		{"4294967290:4294967300:", 2, true},              // epoch 1 (2^32+2): between xmin and xmax
		{"4294967290:4294967300:4294967298", 2, false},   // ... and in progress
		{"4294967290:4294967300:", 4294967295, true},     // epoch 0's last id
		{"4294967290:4294967300:", 10, false},            // 2^32+10: after
		{"8589934692:8589934700:8589934695", 95, true},   // epoch 2: 2^33+95, before xmin
		{"8589934692:8589934700:8589934695", 103, false}, // 2^33+103: in progress
	} {
		s, err := ParseSnapshot(tc.snap)
		if err != nil {
			t.Fatalf("%q: %v", tc.snap, err)
		}
		if got := s.Sees(tc.xid); got != tc.want {
			t.Errorf("%q sees %d: %v, want %v", tc.snap, tc.xid, got, tc.want)
		}
	}
	for _, bad := range []string{"1:2", "a:2:", "1:b:", "5:3:", "1:9:x", "1:9:12", "3:9:2"} {
		if _, err := ParseSnapshot(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseArray(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"{}", nil},
		{"{1,2,30}", []string{"1", "2", "30"}},
		{`{"2026-01-01 00:00:00+00","a\"b","c\\d",x}`, []string{"2026-01-01 00:00:00+00", `a"b`, `c\d`, "x"}},
		{"{04940df6-126a-4e8b-b840-b87d1551e03c}", []string{"04940df6-126a-4e8b-b840-b87d1551e03c"}},
	} {
		got, err := ParseArray(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseArray(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if tc.want != nil {
			back, err := ParseArray(ArrayLiteral(got))
			if err != nil || !slices.Equal(back, tc.want) {
				t.Errorf("round trip of %q through %q: %q, %v", tc.in, ArrayLiteral(got), back, err)
			}
		}
	}
	for _, bad := range []string{"", "1,2", "{1,,2}", "{NULL}", `{"a}`, "{{1},{2}}", `{"a"b}`, "{1,}"} {
		if got, err := ParseArray(bad); err == nil {
			t.Errorf("ParseArray(%q) = %q, no error", bad, got)
		}
	}
}
