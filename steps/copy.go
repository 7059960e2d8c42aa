package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

var copyKind = Kind{
	Name:    "copy",
	Summary: "copy a file or a directory tree between hosts, resumable and sha256-verified",
	// The hosts are in from: and to:.
	NeedsHost: false,
	New:       func() Spec { return new(Copy) },
}

var _ Spec = (*Copy)(nil)

// Copy copies a file, or a directory tree such as a pg_dump -F d archive,
// from one host to another (or within one). Between two remote hosts the
// bytes stream through the workstation, as scp -3 does: the hosts need no
// access to each other.
//
// Each file lands in TO.migrun-part first, is verified by sha256 end to
// end, gets its mode and owner, and only then is renamed over TO: a file at
// TO is always whole and final. An interrupted transfer leaves the part
// file behind and the next run resumes it.
type Copy struct {
	From  string `yaml:"from" required:"true" doc:"what to copy, a file or a directory: HOST:/absolute/path, or /absolute/path on the workstation"`
	To    string `yaml:"to" required:"true" doc:"where the copy goes, HOST:/absolute/path or /absolute/path on the workstation; it names the copy itself, not a directory to put it in"`
	Mode  string `yaml:"mode" doc:"octal permission bits of the copied files, e.g. \"0600\" (default: the source file's)"`
	Owner string `yaml:"owner" doc:"user to own the copied files and directories (name or uid, resolved on the destination)"`
	Group string `yaml:"group" doc:"group to own the copied files and directories (name or gid)"`
	// Direct: see copy_direct.go.
	Direct bool `yaml:"direct" doc:"the source host sends the bytes to the target itself with ssh (a key made for this copy is authorized on the target and removed after; the source trusts only the target host key migrun verified) instead of relaying them through the workstation: faster, when the source can reach the target's SSH address; both ends must be SSH hosts"`
}

const (
	// chunk is both the copy buffer and the resume granularity. A large
	// buffer keeps few, big writes in flight over SFTP; resuming a whole
	// chunk early re-sends the bytes most likely torn by the interruption.
	chunk = 1 << 20
)

// location is one side of a copy. Host "" is the workstation: the runner
// maps it to a local executor.
type location struct {
	Host string
	Path string
}

// parseLocation reads "HOST:/path" or "/path" (the workstation).
func parseLocation(s string) (location, error) {
	if s == "" {
		return location{}, errors.New("empty: want HOST:/absolute/path or /absolute/path")
	}
	if strings.HasPrefix(s, "/") {
		return location{Path: path.Clean(s)}, nil
	}
	host, p, ok := strings.Cut(s, ":")
	if !ok || host == "" || strings.ContainsAny(host, "/ \t") {
		return location{}, fmt.Errorf("%q: want HOST:/absolute/path, or /absolute/path for the workstation", s)
	}
	if !path.IsAbs(p) {
		return location{}, fmt.Errorf("%q: the path after %s: must be absolute", s, host)
	}
	return location{Host: host, Path: path.Clean(p)}, nil
}

// String renders the location as the plan writes it.
func (l location) String() string { return fileOn(l.Host, l.Path) }

func (l location) join(rel string) location {
	if rel == "" {
		return l
	}
	return location{Host: l.Host, Path: path.Join(l.Path, rel)}
}

// Validate checks the two locations and the attributes.
func (c *Copy) Validate() []Problem {
	var ps []Problem
	from, ferr := parseLocation(c.From)
	if ferr != nil {
		ps = append(ps, Problem{"from", ferr.Error()})
	}
	to, terr := parseLocation(c.To)
	if terr != nil {
		ps = append(ps, Problem{"to", terr.Error()})
	}
	if ferr == nil && terr == nil {
		switch {
		case to.Path == "/":
			ps = append(ps, Problem{"to", "the copy cannot replace /"})
		case from == to:
			ps = append(ps, Problem{"to", "from and to are the same file"})
		case from.Host == to.Host && strings.HasPrefix(to.Path, from.Path+"/"):
			// Copying a tree into itself would never end.
			ps = append(ps, Problem{"to", fmt.Sprintf("%s is inside %s", to, from)})
		case c.Direct && (from.Host == "" || to.Host == "" || from.Host == to.Host):
			ps = append(ps, Problem{"direct", "a direct copy goes from one SSH host to another: from and to must name two different hosts"})
		}
	}
	if c.Mode != "" {
		if _, err := parseMode(c.Mode); err != nil {
			ps = append(ps, Problem{"mode", err.Error()})
		}
	}
	for _, f := range []struct{ key, val string }{{"owner", c.Owner}, {"group", c.Group}} {
		if f.val != "" && strings.ContainsAny(f.val, ": \t/") {
			ps = append(ps, Problem{f.key, fmt.Sprintf("%q is not a user or group name", f.val)})
		}
	}
	return ps
}

// parseMode reads permission bits in octal ("0600", "644").
func parseMode(s string) (fs.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || len(s) < 3 || len(s) > 4 {
		return 0, fmt.Errorf("%q is not an octal mode like \"0600\"", s)
	}
	if m > 0o777 {
		return 0, fmt.Errorf("%q: only permission bits (up to 0777) are supported", s)
	}
	if m == 0 {
		// FileAttrs reads mode 0 as "leave it": refuse rather than
		// silently ignore.
		return 0, fmt.Errorf("%q would make the files unreadable; leave mode out to keep the source's", s)
	}
	return fs.FileMode(m), nil
}

// Hosts lists the source host then the destination host ("" is the
// workstation), even when they are the same: the runner shows them as
// "from->to".
func (c *Copy) Hosts(string) []string {
	from, _ := parseLocation(c.From)
	to, _ := parseLocation(c.To)
	return []string{from.Host, to.Host}
}

// Check reports the copy done when every file of the source is at the
// destination with the same size, sha256, mode and (numeric) owner. Files
// only the destination has are not looked at: copy adds, it never deletes.
func (c *Copy) Check(ctx context.Context, rt *Runtime) (Check, error) {
	t, err := c.open(ctx, rt)
	if err != nil {
		return Check{}, err
	}
	root, err := t.statSource(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		// Likely a dry run before the step that makes it; the apply
		// itself fails in Apply with the same words if it still is.
		return Check{Unknown: true, Reason: "source " + t.from.String() + " does not exist yet"}, nil
	}
	if err != nil {
		return Check{}, err
	}
	if !root.IsDir() {
		st, err := t.compare(ctx, fileJob{info: root})
		if err != nil {
			return Check{}, err
		}
		return Check{Done: st.same(), Reason: st.reason}, nil
	}

	tree, err := t.walk(ctx)
	if err != nil {
		return Check{}, err
	}
	files := 0
	for _, e := range tree {
		if e.info.IsDir() {
			fi, err := t.dst.Stat(ctx, t.to.join(e.rel).Path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return Check{Reason: t.to.join(e.rel).String() + " does not exist"}, nil
			case err != nil:
				return Check{}, fmt.Errorf("stat %s: %w", t.to.join(e.rel), err)
			case !fi.IsDir():
				return Check{}, fmt.Errorf("%s is not a directory, but %s is", t.to.join(e.rel), t.from.join(e.rel))
			}
			continue
		}
		files++
		st, err := t.compare(ctx, e)
		if err != nil {
			return Check{}, err
		}
		if !st.same() {
			return Check{Reason: st.reason}, nil
		}
	}
	return Check{Done: true, Reason: fmt.Sprintf("all %s in %s match (sha256)%s", hostcmd.Plural(files, "file", "files"), t.to, t.ownerNote())}, nil
}

// Describe says what would be copied and how much, and whether a part
// file left by an interrupted run would be resumed.
func (c *Copy) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	from, _ := parseLocation(c.From)
	to, _ := parseLocation(c.To)
	act := Action{Host: to.Host, Summary: "copy " + from.String() + " -> " + to.String()}
	then := c.attrsSummary()

	t, err := c.open(ctx, rt)
	if err != nil {
		// Offline or unreachable: still say what would be copied.
		act.Summary += then
		return []Action{act}, err
	}
	root, err := t.statSource(ctx)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		act.Summary += " (source does not exist yet)" + then
		return []Action{act}, nil
	case err != nil:
		act.Summary += then
		return []Action{act}, err
	}
	var detail string
	if root.IsDir() {
		tree, err := t.walk(ctx)
		if err != nil {
			act.Summary += then
			return []Action{act}, err
		}
		var files int
		var size int64
		for _, e := range tree {
			if !e.info.IsDir() {
				files++
				size += e.info.Size
			}
		}
		detail = fmt.Sprintf("directory: %s, %s, sha256 verified", hostcmd.Plural(files, "file", "files"), bytesize.Format(size))
	} else {
		detail = bytesize.Format(root.Size) + ", sha256 verified"
		off, err := t.resumePoint(ctx, t.to.Path, root.Size)
		if err != nil {
			act.Summary += then
			return []Action{act}, err
		}
		if off > 0 {
			detail += "; resumes from " + bytesize.Format(off)
		}
	}
	if c.Direct {
		ep, err := directTarget(t.dst, t.to)
		if err == nil {
			var place keyPlace
			if place, err = findKeyPlace(ctx, t.dst, ep.User); err == nil {
				detail += "; " + describeDirect(t.from, t.to, ep, place)
			}
		}
		if err != nil {
			act.Summary += " (" + detail + ")" + then
			return []Action{act}, err
		}
	}
	act.Summary += " (" + detail + ")" + then
	return []Action{act}, nil
}

// attrsSummary renders ", then mode 0600 owner postgres" or "".
func (c *Copy) attrsSummary() string {
	var parts []string
	if c.Mode != "" {
		parts = append(parts, "mode "+c.Mode)
	}
	if c.Owner != "" {
		parts = append(parts, "owner "+c.Owner)
	}
	if c.Group != "" {
		parts = append(parts, "group "+c.Group)
	}
	if len(parts) == 0 {
		return ""
	}
	return ", then " + strings.Join(parts, " ")
}

// Apply copies what is not already in place and verifies every byte.
func (c *Copy) Apply(ctx context.Context, rt *Runtime) (_ Outcome, err error) {
	t, err := c.open(ctx, rt)
	if err != nil {
		return Outcome{}, err
	}
	defer t.closeLink(ctx, &err)
	root, err := t.statSource(ctx)
	if err != nil {
		return Outcome{}, err
	}
	label := t.from.String() + " -> " + t.to.String()

	if !root.IsDir() {
		job := fileJob{info: root}
		st, err := t.compare(ctx, job)
		if err != nil {
			return Outcome{}, err
		}
		switch {
		case st.same():
			return Outcome{Output: st.reason}, nil
		case st.attrsOnly:
			if err := t.setAttrs(ctx, t.to.Path, t.attrs(root)); err != nil {
				return Outcome{}, err
			}
			return Outcome{Changed: true, Output: "content already matched; fixed mode/owner: " + st.reason}, nil
		}
		off, err := t.resumePoint(ctx, t.to.Path, root.Size)
		if err != nil {
			return Outcome{}, err
		}
		bar := progressOf(rt).Start(Task{Label: label, Unit: UnitBytes, Total: root.Size, Done: off})
		sum, err := t.transfer(ctx, job, off, bar)
		bar.Done(err)
		if err != nil {
			return Outcome{Changed: true}, err
		}
		msg := "copied " + bytesize.Format(root.Size)
		if off > 0 {
			msg += " (resumed from " + bytesize.Format(off) + ")"
		}
		return Outcome{Changed: true, Output: t.relayNote() + msg + ", sha256 " + sum}, nil
	}

	tree, err := t.walk(ctx)
	if err != nil {
		return Outcome{}, err
	}
	var total int64
	for _, e := range tree {
		if !e.info.IsDir() {
			total += e.info.Size
		}
	}
	stream, err := t.streamUsable(ctx)
	if err != nil {
		return Outcome{}, err
	}
	bar := progressOf(rt).Start(Task{Label: label, Unit: UnitBytes, Total: total})
	var res treeResult
	if stream {
		res, err = t.streamTree(ctx, tree, bar)
	} else {
		res, err = t.copyTree(ctx, tree, bar)
	}
	bar.Done(err)
	out := Outcome{Changed: res.copied+res.attrs+res.dirs > 0, Output: t.relayNote() + res.String()}
	return out, err
}
