package steps

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// A directory tree that is not at the destination yet (a pg_dump -F d
// archive: one file per table) is copied as one tar stream: tar on the
// source, tar on the destination, the workstation in between hashing every
// file as it passes. A file at a time costs a dozen round trips (stat,
// open, write, sync, close, checksum, rename); hundreds of small files
// cost seconds that way, inside the downtime. The stream lands in
// DIR.migrun-part, which becomes DIR once every file's sha256 matches. An
// interrupted copy resumes: the files already whole in the part directory
// (same size, same sha256 on both sides, checked in one command each) are
// not sent again.

// streamScript runs on the source: tar of the NUL-separated names on
// stdin, relative to $1, to stdout. Names are listed directories first,
// and not recursed into: the list says exactly what goes.
const streamSourceScript = `cd -- "$1" && exec tar --null --no-recursion -T - -cpf -`

// streamTargetScript runs on the destination: unpack stdin into $1,
// keeping modes, not the source's owners (set after, from the spec).
const streamTargetScript = `mkdir -p -- "$1" && cd -- "$1" && exec tar --no-same-owner -xpf -`

// streamUsable reports whether the tree goes as one stream: the
// destination does not exist, and both hosts have tar.
func (t *copier) streamUsable(ctx context.Context) (bool, error) {
	if t.spec.Direct {
		return false, nil // the source sends direct copies itself, a file at a time
	}
	_, err := t.dst.Stat(ctx, t.to.Path)
	switch {
	case err == nil:
		return false, nil // merge into what is there, a file at a time
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("stat %s: %w", t.to, err)
	}
	for _, ex := range []executors.Executor{t.src, t.dst} {
		if _, err := ex.Run(ctx, executors.Command{Argv: []string{"sh", "-c", "command -v tar"}, ReadOnly: true}); err != nil {
			return false, nil
		}
	}
	return true, nil
}

// streamTree copies tree into DIR.migrun-part as one tar stream, checks
// every file's sha256, sets modes and owners, and renames it to DIR.
func (t *copier) streamTree(ctx context.Context, tree []fileJob, bar Bar) (treeResult, error) {
	var res treeResult
	part := location{t.to.Host, hostcmd.PartPath(t.to.Path)}
	have, err := t.partFiles(ctx, part)
	if err != nil {
		return res, err
	}
	// Files already whole in the part directory, from an interrupted
	// attempt: kept when both sides give the same sha256.
	var maybe []string
	for _, e := range tree {
		if !e.info.IsDir() && e.rel != "" {
			if size, ok := have[e.rel]; ok && size == e.info.Size {
				maybe = append(maybe, e.rel)
			}
		}
	}
	kept := map[string]bool{}
	if len(maybe) > 0 {
		srcSums, dstSums, err := t.sumBoth(ctx, maybe, part)
		if err != nil {
			return res, err
		}
		for _, rel := range maybe {
			if s := srcSums[rel]; s != "" && s == dstSums[rel] {
				kept[rel] = true
			}
		}
	}
	// A file cut short by the interruption goes on from where it
	// stopped, the way a single file does, before the stream: a large
	// table's file is not sent from the start again.
	sub := *t
	sub.to = part
	partial := map[string]bool{}
	for _, e := range tree {
		size, ok := have[e.rel]
		if !ok || e.info.IsDir() || size == 0 || size >= e.info.Size || e.info.Size < 2*chunk {
			continue
		}
		p := path.Join(part.Path, e.rel)
		if err := t.dst.Rename(ctx, p, hostcmd.PartPath(p)); err != nil {
			return res, fmt.Errorf("resume %s: %w", location{part.Host, p}, err)
		}
		off, err := sub.resumePoint(ctx, p, e.info.Size)
		if err != nil {
			return res, err
		}
		bar.Add(off)
		if _, err := sub.transfer(ctx, e, off, bar); err != nil {
			return res, err
		}
		partial[e.rel] = true
		res.resumed += off
	}

	var list bytes.Buffer
	sent := map[string]int64{}
	for _, e := range tree {
		switch {
		case e.rel == "":
			continue // the root: its part directory exists
		case e.info.IsDir():
			res.dirs++
		case kept[e.rel]:
			res.resumed += e.info.Size
			bar.Add(e.info.Size)
			continue
		case partial[e.rel]:
			continue // done above
		default:
			sent[e.rel] = e.info.Size
			res.copied++
			res.bytes += e.info.Size
		}
		list.WriteString(e.rel + "\x00")
	}
	sums, err := t.relayTar(ctx, &list, part, bar)
	if err != nil {
		return res, fmt.Errorf("copy %s -> %s as one stream: %w", t.from, part, err)
	}
	for rel, size := range sent {
		if _, ok := sums[rel]; !ok {
			return res, fmt.Errorf("copy %s -> %s: %s (%s) was not in the stream", t.from, part, rel, bytesize.Format(size))
		}
	}
	if err := t.checkStreamed(ctx, part, sums); err != nil {
		return res, err
	}
	res.copied += len(kept) + len(partial)
	for _, e := range tree {
		if kept[e.rel] || partial[e.rel] {
			res.bytes += e.info.Size
		}
	}
	if err := t.streamAttrs(ctx, part, tree, kept); err != nil { // the partial ones got theirs from transfer
		return res, err
	}
	if err := t.dst.Rename(ctx, part.Path, t.to.Path); err != nil {
		return res, fmt.Errorf("rename %s to %s: %w", part, t.to.Path, err)
	}
	res.dirs++ // the root
	return res, nil
}

// partFiles lists the files in the part directory, relative path -> size,
// in one command; none when it does not exist.
func (t *copier) partFiles(ctx context.Context, part location) (map[string]int64, error) {
	res, err := t.dst.Run(ctx, executors.Command{Argv: []string{"sh", "-c",
		`[ -d "$1" ] || exit 0; cd -- "$1" && find . -type f -printf '%s %P\0'`, "sh", part.Path}, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", part, err)
	}
	files := map[string]int64{}
	for _, rec := range strings.Split(string(res.Stdout), "\x00") {
		size, rel, ok := strings.Cut(rec, " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list %s: %q", part, rec)
		}
		files[rel] = n
	}
	return files, nil
}

// sumScript prints "SHA256  NAME" for the NUL-separated names on stdin,
// relative to $1: one command for any number of files.
const sumScript = `cd -- "$1" && if command -v openssl >/dev/null 2>&1; then xargs -0 -r openssl dgst -sha256 -r; else xargs -0 -r sha256sum --; fi`

// sums returns the sha256 of rels under dir on ex.
func sums(ctx context.Context, ex executors.Executor, dir string, rels []string) (map[string]string, error) {
	var list bytes.Buffer
	for _, r := range rels {
		list.WriteString(r + "\x00")
	}
	var out bytes.Buffer
	_, err := ex.Run(ctx, executors.Command{Argv: []string{"sh", "-c", sumScript, "sh", dir}, Stdin: &list, Stdout: &out, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		sum, name, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		// sha256sum writes "SUM  NAME", openssl -r "SUM *NAME".
		m[strings.TrimPrefix(strings.TrimPrefix(name, " "), "*")] = strings.ToLower(sum)
	}
	return m, nil
}

// sumBoth hashes rels on the source and in the part directory at once.
func (t *copier) sumBoth(ctx context.Context, rels []string, part location) (src, dst map[string]string, err error) {
	src, dst, errA, errB := hostcmd.AtOnce(
		func() (map[string]string, error) { return sums(ctx, t.src, t.from.Path, rels) },
		func() (map[string]string, error) { return sums(ctx, t.dst, part.Path, rels) })
	if errA != nil {
		errA = fmt.Errorf("sha256 on %s: %w", t.from, errA)
	}
	if errB != nil {
		errB = fmt.Errorf("sha256 in %s: %w", part, errB)
	}
	return src, dst, errors.Join(errA, errB)
}

// relayTar runs tar on both hosts and passes the stream between them,
// returning the sha256 of every file it carried.
func (t *copier) relayTar(ctx context.Context, list io.Reader, part location, bar Bar) (map[string]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fromSrc, srcOut := io.Pipe()
	toDst, dstIn := io.Pipe()
	var srcErr, dstErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, srcErr = t.src.Run(ctx, executors.Command{Argv: []string{"sh", "-c", streamSourceScript, "sh", t.from.Path}, Stdin: list, Stdout: srcOut})
		if srcErr != nil {
			srcOut.CloseWithError(srcErr)
		} else {
			srcOut.Close()
		}
	})
	wg.Go(func() {
		_, dstErr = t.dst.Run(ctx, executors.Command{Argv: []string{"sh", "-c", streamTargetScript, "sh", part.Path}, Stdin: toDst})
		// Writes from here on fail instead of blocking.
		toDst.CloseWithError(io.ErrClosedPipe)
		if dstErr != nil {
			cancel() // the source has nowhere to send to
		}
	})

	sums := map[string]string{}
	relayErr := func() error {
		tee := io.TeeReader(fromSrc, dstIn)
		tr := tar.NewReader(tee)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			sum := sha256.New()
			if _, err := io.Copy(io.MultiWriter(sum, barWriter{bar}), tr); err != nil {
				return err
			}
			sums[path.Clean(h.Name)] = hex.EncodeToString(sum.Sum(nil))
		}
		// The end-of-archive blocks and the record's padding: tar on the
		// destination may stop reading before them, so a write that
		// fails here is no error (its exit status says how it went),
		// and the rest is read so the source's tar can finish.
		if _, err := io.Copy(dstIn, fromSrc); err != nil {
			_, err = io.Copy(io.Discard, fromSrc)
			return err
		}
		return nil
	}()
	dstIn.CloseWithError(relayErr)
	if relayErr != nil {
		cancel()
		fromSrc.CloseWithError(relayErr)
	}
	wg.Wait()
	switch {
	case srcErr != nil:
		return nil, fmt.Errorf("tar on %s: %w", t.src.Name(), srcErr)
	case dstErr != nil:
		return nil, fmt.Errorf("tar on %s: %w", t.dst.Name(), dstErr)
	case relayErr != nil:
		return nil, relayErr
	}
	return sums, nil
}

// checkStreamed compares each file's sha256 in the part directory with
// the one taken from the stream, in one command; a mismatched file is
// removed so the next attempt sends it again.
func (t *copier) checkStreamed(ctx context.Context, part location, streamed map[string]string) error {
	rels := make([]string, 0, len(streamed))
	for rel := range streamed {
		rels = append(rels, rel)
	}
	got, err := sums(ctx, t.dst, part.Path, rels)
	if err != nil {
		return fmt.Errorf("sha256 in %s: %w", part, err)
	}
	var bad []string
	for _, rel := range rels {
		if got[rel] != streamed[rel] {
			bad = append(bad, rel)
			_ = t.dst.Remove(ctx, path.Join(part.Path, rel))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("sha256 mismatch after copy %s -> %s for %s; removed them, the next attempt sends them again", t.from, part, strings.Join(bad, ", "))
	}
	return nil
}

// streamAttrs gives the files their mode (the spec's, else the source's,
// which tar kept; kept files from an earlier attempt get it here) and
// every file and directory the spec's owner and group, in one command.
func (t *copier) streamAttrs(ctx context.Context, part location, tree []fileJob, kept map[string]bool) error {
	var (
		script []string
		modes  bytes.Buffer // "MODE\0NAME\0" for each kept file, for xargs
	)
	if t.mode != 0 {
		script = append(script, fmt.Sprintf(`find . -type f -exec chmod %04o {} +`, t.mode.Perm()))
	} else {
		for _, e := range tree {
			if kept[e.rel] {
				fmt.Fprintf(&modes, "%04o\x00%s\x00", e.info.Mode.Perm(), e.rel)
			}
		}
		if modes.Len() > 0 {
			script = append(script, `xargs -0 -r -n 2 chmod --`)
		}
	}
	if owner := ownerSpec(t.spec.Owner, t.spec.Group); owner != "" {
		script = append(script, `chown -R `+executors.Quote(owner)+` .`)
	}
	// The root directory gets its source's mode, as the other
	// directories did from tar.
	script = append(script, fmt.Sprintf(`chmod %04o .`, tree[0].info.Mode.Perm()))
	_, err := t.dst.Run(ctx, executors.Command{Argv: []string{"sh", "-c", `cd -- "$1" && ` + strings.Join(script, " && "), "sh", part.Path}, Stdin: &modes})
	if err != nil {
		return fmt.Errorf("set mode/owner in %s: %w", part, err)
	}
	return nil
}

// ownerSpec is chown's OWNER[:GROUP] or :GROUP, "" for neither.
func ownerSpec(owner, group string) string {
	switch {
	case owner != "" && group != "":
		return owner + ":" + group
	case owner != "":
		return owner
	case group != "":
		return ":" + group
	}
	return ""
}
