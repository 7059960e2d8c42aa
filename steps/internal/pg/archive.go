package pg

import (
	"context"
	"fmt"
	"path"

	"github.com/migrun/migrun/executors"
)

// ArchiveDigest identifies an archive: for a custom-format file its size
// and sha256; for a directory the total size of its files and the sha256
// of toc.dat, which lists every member with its position, so that a
// reused directory costs a small read rather than hashing all the data.
type ArchiveDigest struct {
	Format string // "custom" or "directory", as found on the host
	Size   int64
	SHA256 string
}

// DigestArchive computes the digest of the archive at p.
func DigestArchive(ctx context.Context, ex executors.Executor, p string) (ArchiveDigest, error) {
	fi, err := ex.Stat(ctx, p)
	if err != nil {
		return ArchiveDigest{}, err
	}
	if !fi.IsDir() {
		sum, err := ex.Checksum(ctx, p)
		if err != nil {
			return ArchiveDigest{}, err
		}
		return ArchiveDigest{Format: "custom", Size: fi.Size, SHA256: sum}, nil
	}
	entries, err := ex.ReadDir(ctx, p)
	if err != nil {
		return ArchiveDigest{}, err
	}
	dg := ArchiveDigest{Format: "directory"}
	for _, e := range entries {
		dg.Size += e.Size
	}
	dg.SHA256, err = ex.Checksum(ctx, path.Join(p, "toc.dat"))
	if err != nil {
		return ArchiveDigest{}, fmt.Errorf("%s: %s is not a pg_dump directory archive: %w", ex.Name(), p, err)
	}
	return dg, nil
}
