package steps

import (
	"maps"
	"slices"
	"testing"

	"github.com/migrun/migrun/steps/internal/pg"
)

func TestHotChunks(t *testing.T) {
	tb := chunkedTable{Key: "id", Bounds: "{10,20,30}",
		Source: chunkSums{0: {1, "1"}, 1: {1, "2"}, 2: {1, "3"}, nullKeyChunk: {1, "9"}},
		Target: chunkSums{0: {1, "1"}, 1: {1, "7"}, 3: {1, "4"}, nullKeyChunk: {1, "8"}}}
	for _, tc := range []struct {
		name    string
		table   chunkedTable
		drained *drainedTable
		want    []int
	}{
		{"differing, NULL chunk left out", tb, nil, []int{1, 2, 3}},
		{"with the drained", tb, &drainedTable{Chunks: []int{nullKeyChunk, 0, 3}}, []int{0, 1, 2, 3}},
		{"drained whole: read whole anyway", tb, &drainedTable{Whole: true}, nil},
		{"not chunked", chunkedTable{Source: chunkSums{wholeTable: {1, "1"}}}, nil, nil},
	} {
		if got := hotChunks(&tc.table, tc.drained); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestChunkSplit: chunks 0 (below the first bound) and 3 (the last, open
// one) of bounds {10,20,30} cut; the others keep their sums, renumbered.
func TestChunkSplit(t *testing.T) {
	tb := &chunkedTable{Key: "id", Type: "bigint", Bounds: "{10,20,30}",
		Source: chunkSums{0: {5, "a"}, 1: {5, "b"}, 2: {5, "c"}, 3: {5, "d"}, nullKeyChunk: {1, "n"}},
		Target: chunkSums{0: {5, "a"}, 1: {5, "b"}, 2: {5, "c"}, 3: {6, "x"}, nullKeyChunk: {1, "n"}}}
	sp := &chunkSplit{table: tb, bounds: []string{"10", "20", "30"}, hot: []int{0, 3},
		subs: map[int][]string{0: {"3", "6"}, 3: {"40"}}}
	if got, want := sp.newBounds(), []string{"3", "6", "10", "20", "30", "40"}; !slices.Equal(got, want) {
		t.Fatalf("new bounds %v, want %v", got, want)
	}
	for old, want := range map[int]int{0: 0, 1: 3, 2: 4, 3: 5, nullKeyChunk: nullKeyChunk} {
		if got := sp.moved(old); got != want {
			t.Errorf("chunk %d moved to %d, want %d", old, got, want)
		}
	}
	if got, want := slices.Sorted(maps.Keys(sp.covered())), []int{0, 1, 2, 5, 6}; !slices.Equal(got, want) {
		t.Errorf("covered %v, want %v", got, want)
	}
	// The refreshed sums as rangeSumSQL returns them, in the new bounds.
	src := chunkSums{0: {1, "s0"}, 1: {2, "s1"}, 2: {2, "s2"}, 5: {3, "s5"}, 6: {2, "s6"}}
	dst := chunkSums{0: {1, "s0"}, 1: {2, "s1"}, 2: {2, "s2"}, 5: {3, "s5"}, 6: {3, "t6"}}
	nt := sp.apply(src, dst)
	if nt.Bounds != `{"3","6","10","20","30","40"}` {
		t.Errorf("bounds %s", nt.Bounds)
	}
	wantSrc := chunkSums{0: {1, "s0"}, 1: {2, "s1"}, 2: {2, "s2"}, 3: {5, "b"}, 4: {5, "c"}, 5: {3, "s5"}, 6: {2, "s6"}, nullKeyChunk: {1, "n"}}
	if !maps.Equal(nt.Source, wantSrc) {
		t.Errorf("source %v\nwant %v", nt.Source, wantSrc)
	}
	if got := nt.differing(); !slices.Equal(got, []int{6}) {
		t.Errorf("differing after the split %v, want [6]", got)
	}
	if tb.Bounds != "{10,20,30}" || len(tb.Source) != 5 {
		t.Errorf("apply changed the table it split: %+v", tb)
	}
}

// TestSlotChanges: the baseline's snapshot drops what it saw, a refresh's
// sets apart what it saw, the rest is the changes.
func TestSlotChanges(t *testing.T) {
	rows := [][]string{
		{"i", "1", "2", "3", "4"}, // not a change: left alone
		{"d", "95", "table public.a: INSERT: id[bigint]:1"},
		{"d", "101", "table public.a: INSERT: id[bigint]:2"},
		{"d", "103", "table public.a: INSERT: id[bigint]:3"},
		{"d", "110", "table public.a: INSERT: id[bigint]:4"},
	}
	baseline, _ := pg.ParseSnapshot("100:102:") // saw 95 and 101
	refresh, _ := pg.ParseSnapshot("104:106:")  // saw 103 too
	lines, seen, err := slotChanges(rows, baseline, refresh)
	if err != nil || !slices.Equal(lines, []string{rows[4][2]}) || !slices.Equal(seen, []string{rows[3][2]}) {
		t.Fatalf("lines %q seen %q %v", lines, seen, err)
	}
	lines, seen, err = slotChanges(rows, pg.Snapshot{}, pg.Snapshot{})
	if err != nil || len(lines) != 4 || len(seen) != 0 {
		t.Fatalf("without snapshots: lines %q seen %q %v", lines, seen, err)
	}
	for _, bad := range [][]string{{"d", "x", "table public.a: INSERT: id[bigint]:1"}, {"d", "table public.a: INSERT: id[bigint]:1"}} {
		if _, _, err := slotChanges([][]string{bad}, baseline, refresh); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
