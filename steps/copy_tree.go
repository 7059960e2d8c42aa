package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// copy's tree: the source walked and checked before a byte moves, the
// directories made, each file copied, the directories' owners set last.

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
