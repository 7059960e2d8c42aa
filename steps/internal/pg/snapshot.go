package pg

import (
	"fmt"
	"strconv"
	"strings"
)

// Snapshot is an MVCC snapshot as pg_current_snapshot() prints it,
// "xmin:xmax:xip,...", with 64-bit transaction ids (the epoch in the high
// half). It says which transactions' changes a reading in that snapshot
// saw: what a logical slot decodes of those is in the reading already.
type Snapshot struct {
	xmin, xmax uint64
	xip        map[uint64]bool // in progress when the snapshot was taken
}

// ParseSnapshot reads pg_current_snapshot()'s text; "" is the zero
// Snapshot, which sees nothing.
func ParseSnapshot(s string) (Snapshot, error) {
	if s == "" {
		return Snapshot{}, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Snapshot{}, fmt.Errorf("snapshot %q: want xmin:xmax:xip", s)
	}
	var snap Snapshot
	var err error
	if snap.xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %q: xmin: %w", s, err)
	}
	if snap.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %q: xmax: %w", s, err)
	}
	if snap.xmin > snap.xmax {
		return Snapshot{}, fmt.Errorf("snapshot %q: xmin after xmax", s)
	}
	if parts[2] != "" {
		snap.xip = map[uint64]bool{}
		for _, x := range strings.Split(parts[2], ",") {
			id, err := strconv.ParseUint(x, 10, 64)
			if err != nil || id < snap.xmin || id >= snap.xmax {
				return Snapshot{}, fmt.Errorf("snapshot %q: in-progress id %q", s, x)
			}
			snap.xip[id] = true
		}
	}
	return snap, nil
}

// Sees reports whether the snapshot saw the changes of xid, a transaction
// known to have committed, as a logical slot's functions report it (32
// bits, no epoch). xid is taken to be the 64-bit id nearest the
// snapshot's xmax, as the server itself widens one: a slot's changes come
// from around the snapshot, never 2^31 transactions away.
func (s Snapshot) Sees(xid uint32) bool {
	if s.xmax == 0 {
		return false
	}
	full := s.xmax&^0xffffffff | uint64(xid)
	switch {
	case full > s.xmax && full-s.xmax > 1<<31 && full >= 1<<32:
		full -= 1 << 32
	case full < s.xmax && s.xmax-full > 1<<31:
		full += 1 << 32
	}
	return full < s.xmin || full < s.xmax && !s.xip[full]
}
