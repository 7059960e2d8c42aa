package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
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

// treeResult counts what a tree copy did.
type treeResult struct {
	copied, attrs, same, dirs int
	bytes                     int64
	resumed                   int64 // bytes already there from an interrupted copy
}

func (r treeResult) String() string {
	s := fmt.Sprintf("copied %s (%s)", hostcmd.Plural(r.copied, "file", "files"), bytesize.Format(r.bytes))
	if r.resumed > 0 {
		s += " (resumed from " + bytesize.Format(r.resumed) + " already there)"
	}
	if r.attrs > 0 {
		s += fmt.Sprintf(", fixed mode/owner of %d", r.attrs)
	}
	if r.same > 0 {
		s += fmt.Sprintf(", %d already identical", r.same)
	}
	return s + ", sha256 verified"
}

// copyTree recreates the directories, then copies each file through its
// own part file. Directory owners and modes are set last, deepest first:
// a directory handed to another user (0700 postgres) early could lock the
// login user out of filling it.
func (t *copier) copyTree(ctx context.Context, tree []fileJob, bar Bar) (treeResult, error) {
	var res treeResult
	// dirs are the destination directories with the attributes they
	// get once their files are in.
	type dirAttrs struct {
		path  string
		attrs executors.FileAttrs
	}
	var dirs []dirAttrs
	for _, e := range tree {
		if !e.info.IsDir() {
			continue
		}
		dst := t.to.join(e.rel)
		a := executors.FileAttrs{Owner: t.spec.Owner, Group: t.spec.Group}
		fi, err := t.dst.Stat(ctx, dst.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := t.dst.MkdirAll(ctx, dst.Path, e.info.Mode.Perm()); err != nil {
				return res, fmt.Errorf("create directory %s: %w", dst, err)
			}
			res.dirs++
			// MkdirAll's mode passes through the umask; set it exactly.
			// Only a new directory gets the source's mode: one that was
			// there already may have been set up by hand.
			a.Mode = e.info.Mode.Perm()
		case err != nil:
			return res, fmt.Errorf("stat %s: %w", dst, err)
		case !fi.IsDir():
			return res, fmt.Errorf("%s is not a directory, but %s is", dst, t.from.join(e.rel))
		}
		if a != (executors.FileAttrs{}) {
			dirs = append(dirs, dirAttrs{dst.Path, a})
		}
	}
	for _, e := range tree {
		if e.info.IsDir() {
			continue
		}
		st, err := t.compare(ctx, e)
		if err != nil {
			return res, err
		}
		switch {
		case st.same():
			res.same++
			bar.Add(e.info.Size)
			continue
		case st.attrsOnly:
			if err := t.setAttrs(ctx, t.to.join(e.rel).Path, t.attrs(e.info)); err != nil {
				return res, err
			}
			res.attrs++
			bar.Add(e.info.Size)
			continue
		}
		off, err := t.resumePoint(ctx, t.to.join(e.rel).Path, e.info.Size)
		if err != nil {
			return res, err
		}
		bar.Add(off)
		if _, err := t.transfer(ctx, e, off, bar); err != nil {
			return res, err
		}
		res.resumed += off
		res.copied++
		res.bytes += e.info.Size
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := t.setAttrs(ctx, dirs[i].path, dirs[i].attrs); err != nil {
			return res, err
		}
	}
	return res, nil
}

// copier is one copy between two connected hosts.
type copier struct {
	spec     *Copy
	from, to location
	src, dst executors.Executor
	mode     fs.FileMode // wanted mode; 0: the source file's
	direct   *directLink // set up by the first direct transfer
	// relayed says why a direct copy went through the workstation after
	// all; "" while it goes direct (or was not asked to).
	relayed string
}

// link returns the direct copy's access, setting it up on first use.
func (t *copier) link(ctx context.Context) (*directLink, error) {
	if t.direct == nil {
		l, err := openDirect(ctx, t.src, t.dst, t.to)
		if err != nil {
			return nil, err
		}
		t.direct = l
	}
	return t.direct, nil
}

// relay gives up the direct route after why (the target's sshd reads no
// keys file migrun can add to, or refused the source's key): the access
// is removed and this file and the rest go through the workstation, as
// the step's output says.
func (t *copier) relay(ctx context.Context, why error) error {
	t.relayed = "not directly (" + why.Error() + "): copied through the workstation"
	var err error
	t.closeLink(ctx, &err)
	t.direct = nil
	return err
}

// relayNote is the first line of the output when a direct copy went
// through the workstation.
func (t *copier) relayNote() string {
	if t.relayed == "" {
		return ""
	}
	return t.relayed + "\n"
}

// closeLink removes a direct copy's access, adding any failure to err.
func (t *copier) closeLink(ctx context.Context, err *error) {
	if t.direct != nil {
		if cerr := t.direct.close(ctx); cerr != nil {
			*err = errors.Join(*err, cerr)
		}
	}
}

func (c *Copy) open(ctx context.Context, rt *Runtime) (*copier, error) {
	t := &copier{spec: c}
	var err error
	if t.from, err = parseLocation(c.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if t.to, err = parseLocation(c.To); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	if c.Mode != "" {
		if t.mode, err = parseMode(c.Mode); err != nil {
			return nil, fmt.Errorf("mode: %w", err)
		}
	}
	if t.src, err = rt.Executor(ctx, t.from.Host); err != nil {
		return nil, fmt.Errorf("source %s: %w", t.from, err)
	}
	if t.dst, err = rt.Executor(ctx, t.to.Host); err != nil {
		return nil, fmt.Errorf("destination %s: %w", t.to, err)
	}
	return t, nil
}

func (t *copier) statSource(ctx context.Context) (executors.FileInfo, error) {
	fi, err := t.src.Stat(ctx, t.from.Path)
	if err != nil {
		return fi, fmt.Errorf("source %s: %w", t.from, err)
	}
	if !fi.IsDir() && !fi.Mode.IsRegular() {
		return fi, fmt.Errorf("source %s is not a regular file or a directory (%s)", t.from, fi.Mode.Type())
	}
	return fi, nil
}

// fileJob is one file or directory of the source, rel to the copy's root
// ("" for a single-file copy).
type fileJob struct {
	rel  string
	info executors.FileInfo
}

// walk lists the source tree, directories before what they hold, and
// refuses anything but directories and regular files before a single byte
// is copied: a symlink could point anywhere on the destination.
func (t *copier) walk(ctx context.Context) ([]fileJob, error) {
	root, err := t.statSource(ctx)
	if err != nil {
		return nil, err
	}
	tree := []fileJob{{info: root}}
	var visit func(rel string) error
	visit = func(rel string) error {
		dir := t.from.join(rel)
		entries, err := t.src.ReadDir(ctx, dir.Path)
		if err != nil {
			return fmt.Errorf("list %s: %w", dir, err)
		}
		for _, fi := range entries {
			r := path.Join(rel, fi.Name)
			switch {
			case fi.IsDir():
				tree = append(tree, fileJob{rel: r, info: fi})
				if err := visit(r); err != nil {
					return err
				}
			case fi.Mode.IsRegular():
				tree = append(tree, fileJob{rel: r, info: fi})
			default:
				return fmt.Errorf("%s is a %s: copy takes only regular files and directories", t.from.join(r), describeType(fi.Mode))
			}
		}
		return nil
	}
	if err := visit(""); err != nil {
		return nil, err
	}
	return tree, nil
}

func describeType(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// attrs are the wanted attributes of the copy of a source file.
func (t *copier) attrs(src executors.FileInfo) executors.FileAttrs {
	a := executors.FileAttrs{Mode: src.Mode.Perm(), Owner: t.spec.Owner, Group: t.spec.Group}
	if t.mode != 0 {
		a.Mode = t.mode
	}
	return a
}

func (t *copier) setAttrs(ctx context.Context, p string, a executors.FileAttrs) error {
	if err := t.dst.SetAttrs(ctx, p, a); err != nil {
		return fmt.Errorf("set mode/owner of %s: %w", location{t.to.Host, p}, err)
	}
	return nil
}

// fileState is how a destination file compares with its source.
type fileState struct {
	contentSame bool // same size and sha256
	attrsOnly   bool // content same, mode or owner not
	reason      string
}

func (s fileState) same() bool { return s.contentSame && !s.attrsOnly }

// compare checks the destination of one source file. Sizes are compared
// first so that the checksums, which read both files whole, run only when
// they could match.
func (t *copier) compare(ctx context.Context, job fileJob) (fileState, error) {
	src, dst := t.from.join(job.rel), t.to.join(job.rel)
	fi, err := t.dst.Stat(ctx, dst.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fileState{reason: dst.String() + " does not exist"}, nil
	case err != nil:
		return fileState{}, fmt.Errorf("stat %s: %w", dst, err)
	case fi.IsDir():
		return fileState{}, fmt.Errorf("%s is a directory, but %s is a file", dst, src)
	case !fi.Mode.IsRegular():
		return fileState{}, fmt.Errorf("%s is a %s, not a regular file", dst, describeType(fi.Mode))
	case fi.Size != job.info.Size:
		return fileState{reason: fmt.Sprintf("%s is %s, %s is %s", dst, bytesize.Format(fi.Size), src, bytesize.Format(job.info.Size))}, nil
	}
	srcSum, dstSum, err := checksums(ctx, t.src, src, t.dst, dst)
	if err != nil {
		return fileState{}, err
	}
	if srcSum != dstSum {
		return fileState{reason: fmt.Sprintf("%s differs from %s (sha256)", dst, src)}, nil
	}
	want := t.attrs(job.info)
	var diffs []string
	if want.Mode != 0 && fi.Mode.Perm() != want.Mode {
		diffs = append(diffs, fmt.Sprintf("mode is %04o, want %04o", fi.Mode.Perm(), want.Mode))
	}
	if uid, err := strconv.Atoi(want.Owner); err == nil && fi.UID != uid {
		diffs = append(diffs, fmt.Sprintf("owner is uid %d, want %d", fi.UID, uid))
	}
	if gid, err := strconv.Atoi(want.Group); err == nil && fi.GID != gid {
		diffs = append(diffs, fmt.Sprintf("group is gid %d, want %d", fi.GID, gid))
	}
	if len(diffs) > 0 {
		return fileState{contentSame: true, attrsOnly: true, reason: dst.String() + " matches (sha256) but its " + strings.Join(diffs, ", ")}, nil
	}
	return fileState{contentSame: true, reason: dst.String() + " matches (sha256 " + hostcmd.ShortSum(srcSum) + ")" + t.ownerNote()}, nil
}

// ownerNote says that named owners were not compared. Names would need
// a lookup on the host; and since attributes are set on the part file
// before its rename, a file that copy put in place has them anyway.
func (t *copier) ownerNote() string {
	var names []string
	if _, err := strconv.Atoi(t.spec.Owner); t.spec.Owner != "" && err != nil {
		names = append(names, "owner "+t.spec.Owner)
	}
	if _, err := strconv.Atoi(t.spec.Group); t.spec.Group != "" && err != nil {
		names = append(names, "group "+t.spec.Group)
	}
	if len(names) == 0 {
		return ""
	}
	return "; " + strings.Join(names, ", ") + " not verified (names are not resolved)"
}

// resumePoint is where a transfer to dst restarts: from a chunk boundary
// at least one chunk before the end of a part file left by an earlier
// attempt, since its last bytes may be torn (or, after concurrent SFTP
// writes, be holes). A part larger than the source is from some other
// file and is started over.
func (t *copier) resumePoint(ctx context.Context, dst string, size int64) (int64, error) {
	part := hostcmd.PartPath(dst)
	fi, err := t.dst.Stat(ctx, part)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("stat %s: %w", location{t.to.Host, part}, err)
	case !fi.Mode.IsRegular():
		return 0, fmt.Errorf("%s is in the way: it is not a regular file", location{t.to.Host, part})
	case fi.Size <= 0 || fi.Size > size:
		return 0, nil
	}
	return max(0, fi.Size-chunk) / chunk * chunk, nil
}

// transfer streams one file into its part file from offset, verifies the
// whole part against the source by sha256, applies the attributes and
// renames it into place. It returns the checksum. On a mismatch it
// removes the part so the next attempt starts over instead of resuming
// from bad bytes again.
func (t *copier) transfer(ctx context.Context, job fileJob, offset int64, bar Bar) (string, error) {
	src, dst := t.from.join(job.rel), t.to.join(job.rel)
	part := location{dst.Host, hostcmd.PartPath(dst.Path)}

	w, err := t.dst.OpenWriter(ctx, part.Path, offset)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", part, err)
	}
	// A copy from the start hashes the source bytes as they stream past:
	// no second read of the source. A resumed one has not seen the first
	// bytes and hashes the source file afterwards, as does a direct one,
	// whose bytes never pass here.
	var (
		n        int64
		link     *directLink
		streamed hash.Hash
	)
	if t.spec.Direct && t.relayed == "" {
		// OpenWriter truncated the part to offset; the source appends.
		err = w.Close()
		if err == nil {
			link, err = t.link(ctx)
		}
		if err == nil {
			err = link.send(ctx, src.Path, part.Path, offset, bar)
		}
		if errors.Is(err, errDirectRefused) || refusedByTarget(err) {
			link, err = nil, t.relay(ctx, err)
			if err == nil {
				w, err = t.dst.OpenWriter(ctx, part.Path, offset)
			}
			if err != nil {
				return "", fmt.Errorf("copy %s -> %s: %w", src, part, err)
			}
		}
	}
	if link == nil && err == nil {
		if offset == 0 {
			streamed = sha256.New()
		}
		n, err = t.stream(ctx, w, src, offset, job.info.Size-offset, bar, streamed)
		if err == nil {
			err = w.Sync()
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		// The part stays: the next attempt resumes from it.
		return "", fmt.Errorf("copy %s -> %s (at %s of %s): %w", src, part, bytesize.Format(offset+n), bytesize.Format(job.info.Size), err)
	}

	// The source is hashed after the copy, not before, so that a source
	// that changed while it was read shows as a mismatch; a streamed hash
	// is checked against the source's size and time instead.
	var srcSum, dstSum string
	if streamed != nil {
		srcSum = hex.EncodeToString(streamed.Sum(nil))
		if dstSum, err = t.dst.Checksum(ctx, part.Path); err != nil {
			return "", fmt.Errorf("sha256 of %s: %w", part, err)
		}
		if now, err := t.src.Stat(ctx, src.Path); err != nil {
			return "", fmt.Errorf("stat %s after the copy: %w", src, err)
		} else if now.Size != job.info.Size || !now.ModTime.Equal(job.info.ModTime) {
			dstSum = "(not checked: the source changed during the copy)"
		}
	} else if link != nil {
		if srcSum, dstSum, err = link.sums(ctx, src.Path, part.Path); err != nil {
			return "", err
		}
	} else if srcSum, dstSum, err = checksums(ctx, t.src, src, t.dst, part); err != nil {
		return "", err
	}
	if srcSum != dstSum {
		if rerr := t.dst.Remove(ctx, part.Path); rerr != nil {
			err = fmt.Errorf("and removing it failed: %w", rerr)
		}
		return "", errors.Join(fmt.Errorf("sha256 mismatch after copy %s -> %s: source %s, copy %s (did the source change during the copy?); removed the part file, the next attempt starts over", src, part, srcSum, dstSum), err)
	}
	// Attributes go on before the rename: a file at dst is then never
	// seen, even briefly, with the wrong mode or owner.
	if err := t.setAttrs(ctx, part.Path, t.attrs(job.info)); err != nil {
		return "", err
	}
	if err := t.dst.Rename(ctx, part.Path, dst.Path); err != nil {
		return "", fmt.Errorf("rename %s to %s: %w", part, dst.Path, err)
	}
	return srcSum, nil
}

// stream copies n bytes of src from offset into w and returns how many
// it copied.
func (t *copier) stream(ctx context.Context, w io.Writer, src location, offset, n int64, bar Bar, sum hash.Hash) (int64, error) {
	r, err := t.src.Open(ctx, src.Path)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", src, err)
	}
	defer r.Close()
	if offset > 0 {
		if _, err := r.Seek(offset, io.SeekStart); err != nil {
			return 0, fmt.Errorf("seek %s to %d: %w", src, offset, err)
		}
	}
	// The LimitedReader states the length, which is what lets an SFTP
	// file's ReadFrom send its writes concurrently; it also keeps a
	// source that grows from overrunning the size we announced.
	// An SFTP file's WriteTo keeps many read requests in flight all along
	// (a Read waits for its whole buffer): let it fill a pipe that the
	// writer drains, so both ends stream at once.
	var in io.Reader = r
	if wt, ok := r.(io.WriterTo); ok {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := wt.WriteTo(pw)
			pw.CloseWithError(err)
		}()
		defer func() {
			pr.Close() // stops WriteTo at the bytes wanted or on an error
			<-done
		}()
		in = pr
	}
	if sum != nil {
		in = io.TeeReader(in, sum)
	}
	lr := &io.LimitedReader{R: &progressReader{ctx: ctx, r: in, bar: bar}, N: n}
	copied, err := io.CopyBuffer(w, lr, make([]byte, chunk))
	if err == nil && copied < n {
		err = fmt.Errorf("%s ended after %s: it shrank during the copy", src, bytesize.Format(offset+copied))
	}
	return copied, err
}

// progressReader reports bytes read and stops the copy when ctx ends
// (an io.Copy never looks at a context).
type progressReader struct {
	ctx context.Context
	r   io.Reader
	bar Bar
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.bar.Add(int64(n))
	return n, err
}

// checksums hashes two files at once, each on its own host: for a large
// dump that halves the wait.
func checksums(ctx context.Context, a executors.Executor, al location, b executors.Executor, bl location) (string, string, error) {
	sa, sb, errA, errB := hostcmd.AtOnce(
		func() (string, error) { return a.Checksum(ctx, al.Path) },
		func() (string, error) { return b.Checksum(ctx, bl.Path) })
	if errA != nil {
		errA = fmt.Errorf("sha256 of %s: %w", al, errA)
	}
	if errB != nil {
		errB = fmt.Errorf("sha256 of %s: %w", bl, errB)
	}
	return sa, sb, errors.Join(errA, errB)
}
