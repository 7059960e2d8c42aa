package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

var pgVerifyKind = Kind{
	Name:    "pg_verify",
	Summary: "compare two PostgreSQL databases (tables, exact row counts, sequences, extensions), read-only",
	// The two databases name their hosts; the step's host: is not used.
	NeedsHost: false,
	New:       func() Spec { return new(PgVerify) },
}

var _ Spec = (*PgVerify)(nil)

// PgVerify compares two databases, typically the source and the restored
// copy of a migration: the tables (schema-qualified) and their exact row
// counts, the sequences' last values and the extensions with their
// versions. It only reads: psql runs on each database's host as the
// PostgreSQL OS user, inside a read-only repeatable-read transaction so all
// the numbers of one side come from one snapshot.
//
// Check and Apply do the same comparison: Check says done when the
// databases match, Apply fails listing every difference. Counting rows
// reads every table, so on a large database it takes a while.
type PgVerify struct {
	Source PgEndpoint `yaml:"source" required:"true" doc:"the database to compare against (the original)"`
	Target PgEndpoint `yaml:"target" required:"true" doc:"the database that must match it (the copy)"`

	// Strings rather than bools so that an absent key can default to true.
	Tables     string `yaml:"tables" enum:"true|false" default:"true" doc:"compare the tables and their exact row counts (count(*))"`
	Sequences  string `yaml:"sequences" enum:"true|false" default:"true" doc:"compare the sequences' last values"`
	Extensions string `yaml:"extensions" enum:"true|false" default:"true" doc:"compare the installed extensions and their versions"`

	// Action splits the comparison of a database that is being
	// replicated (see pg_verify_baseline.go): baseline, while the
	// application still runs, compares every row's checksum chunk by chunk
	// and follows the source's changes from then on; compare, in the
	// downtime, then reads again only the chunks that changed since or
	// differed. Without a baseline of this run, compare reads everything.
	Action string `yaml:"action" enum:"compare|baseline|cancel" default:"compare" doc:"compare: compare now (only what changed since this run's baseline, if one was taken); baseline: checksum every chunk of rows while the application runs and follow the source's changes (needs wal_level = logical on the source); cancel: drop the baseline's replication slot (on_failure)"`

	markerDir string // where the baseline's marker lives ("" = /var/tmp); tests set it
}

func (v *PgVerify) Validate() []Problem {
	ps := v.Source.PgConnection.validate("source.")
	ps = append(ps, v.Target.PgConnection.validate("target.")...)
	if v.Source == v.Target {
		ps = append(ps, Problem{"target", "source and target are the same database"})
	}
	if v.Action == "baseline" && !v.tables() {
		ps = append(ps, Problem{"tables", "a baseline checksums the tables' rows: tables cannot be false"})
	}
	if !v.tables() && !v.sequences() && !v.extensions() {
		ps = append(ps, Problem{"", "tables, sequences and extensions are all false: nothing to compare"})
	}
	return ps
}

func (v *PgVerify) tables() bool     { return v.Tables != "false" }
func (v *PgVerify) sequences() bool  { return v.Sequences != "false" }
func (v *PgVerify) extensions() bool { return v.Extensions != "false" }

// Hosts are the two databases' hosts.
func (v *PgVerify) Hosts(string) []string { return []string{v.Source.Host, v.Target.Host} }

// Check compares the databases: done when they match. With a baseline
// of this run, the comparison is Apply's alone (it drops the slot).
func (v *PgVerify) Check(ctx context.Context, rt *Runtime) (Check, error) {
	switch v.Action {
	case "baseline":
		return v.checkBaseline(ctx, rt)
	case "cancel":
		return v.checkCancel(ctx, rt)
	}
	if v.tables() {
		// Errors here (a host not up yet) are the full comparison's to report.
		if m, err := v.runMarker(ctx, rt); err == nil && m != nil {
			switch m.State {
			case verifyBaselined:
				// Apply alone reads the databases: in the downtime, one
				// round trip less. It confirms the baseline is these
				// databases' and its slot there, or compares everything.
				return Check{Reason: "compare what changed since this run's baseline (WAL " + m.LSN + ") and what differed then"}, nil
			case verifyVerified:
				if st, err := v.readBaseline(ctx, rt, readForCheck); err == nil && st.marker != nil && st.marker.State == verifyVerified {
					return Check{Done: true, Reason: "compared by this run at " + st.marker.Time.Format(time.RFC3339)}, nil
				}
			}
		}
	}
	c, err := v.compare(ctx, rt, true)
	switch {
	case err != nil:
		return Check{}, err
	case c.unknown:
		return Check{Unknown: true, Reason: c.unknownReason}, nil
	case len(c.diffs) > 0:
		first := c.diffs[0]
		if len(c.diffs) > 1 {
			first += fmt.Sprintf(" (and %d more)", len(c.diffs)-1)
		}
		return Check{Reason: "the databases differ: " + first}, nil
	}
	return Check{Done: true, Reason: c.summary()}, nil
}

func (v *PgVerify) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	switch v.Action {
	case "baseline":
		return v.describeBaseline(rt), nil
	case "cancel":
		return []Action{{Host: v.Source.Host, Summary: pg.Action(v.Source.Host, v.Source.target(v.Source.Database), v.dropSlotSQL(rt.RunID))}}, nil
	}
	var what []string
	if v.tables() {
		what = append(what, "tables with exact row counts")
	}
	if v.sequences() {
		what = append(what, "sequences' last values")
	}
	if v.extensions() {
		what = append(what, "extensions")
	}
	var acts []Action
	for _, ep := range []PgEndpoint{v.Source, v.Target} {
		t := ep.target(ep.Database)
		acts = append(acts, Action{Host: ep.Host, Summary: "run on " + ep.Host + " as " + t.RunAs() + ": " +
			executors.QuoteArgv(t.PsqlArgv()) + " (read-only transaction listing " + strings.Join(what, ", ") + ")"})
	}
	if v.tables() {
		t := v.Source.target(v.Source.Database)
		acts = append(acts, Action{Host: v.Source.Host, Summary: "run on " + v.Source.Host + " as " + t.RunAs() + ": " + executors.QuoteArgv(t.PsqlArgv()) +
			" (with this run's baseline: read again only the chunks of rows changed since, decoded from slot " + v.slotName(rt.RunID) +
			", or differing then; once they match, drop the slot)"})
	}
	acts = append(acts, Action{Summary: "fail when " + v.Target.Database + " on " + v.Target.Host + " differs from " + v.Source.Database + " on " + v.Source.Host})
	return acts, nil
}

// Apply compares the databases and fails listing every difference. It
// changes nothing but its own baseline's slot and marker: Outcome.Changed
// is always false.
func (v *PgVerify) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	switch v.Action {
	case "baseline":
		return v.applyBaseline(ctx, rt)
	case "cancel":
		return v.applyCancel(ctx, rt)
	}
	var st baselineState
	if v.tables() {
		var err error
		st, err = v.readBaseline(ctx, rt, readChanges)
		defer st.closeSessions()
		if err != nil {
			return Outcome{}, err
		}
	}
	var (
		c    comparison
		read []string // what was read again since the baseline
		err  error
	)
	since := st.marker != nil && st.marker.State == verifyBaselined && st.slot
	if since {
		c, read, err = v.compareSince(ctx, rt, st)
		st.slot = false // dropped by the comparison
	} else {
		c, err = v.compare(ctx, rt, false)
	}
	if err != nil {
		return Outcome{}, err
	}
	if len(c.diffs) > 0 {
		return Outcome{Output: strings.Join(c.diffs, "\n")}, c.err()
	}
	if err := v.closeBaseline(ctx, rt, st); err != nil {
		return Outcome{}, err
	}
	out := c.summary()
	if since {
		out += fmt.Sprintf(" (%s read again since the baseline of %s", hostcmd.Plural(len(read), "table", "tables"), st.marker.Time.Format(time.RFC3339))
		if len(read) > 0 {
			const listed = 12
			out += ": " + strings.Join(read[:min(len(read), listed)], ", ")
			if len(read) > listed {
				out += fmt.Sprintf(", … and %d more", len(read)-listed)
			}
		}
		out += ")"
	}
	return Outcome{Output: out}, nil
}

// closeBaseline drops this run's slot once the comparison passed, then
// records it; in that order, so no marker says verified while a slot
// still holds the source's WAL.
func (v *PgVerify) closeBaseline(ctx context.Context, rt *Runtime, st baselineState) error {
	if st.slot {
		if _, err := pg.Exec(ctx, st.src, v.Source.target(v.Source.Database), v.dropSlotSQL(rt.RunID)); err != nil {
			return fmt.Errorf("source %s: drop slot: %w", v.Source.Database, err)
		}
	}
	if st.marker != nil {
		// The sums have served: a verified marker only says so, and is
		// written in the downtime (at 4 GB the sums are 200 KB).
		st.marker.State, st.marker.Tables, st.marker.Drained = verifyVerified, nil, nil
		if err := v.writeMarker(ctx, st.src, st.marker); err != nil {
			return fmt.Errorf("%s: %w", st.src.Name(), err)
		}
	}
	return nil
}

// VerifiesOnly: this kind changes no host (see Verifier).
func (*PgVerify) VerifiesOnly() {}
