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
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// copy's files: how a destination file compares with its source, the
// resume point of a part file, and the transfer itself, hashed as it
// passes and verified end to end.

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
