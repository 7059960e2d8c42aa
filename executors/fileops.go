package executors

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os/user"
	"path"
	"strconv"
	"syscall"
)

// tempName is the name of the temporary file WriteFile writes next to base:
// hidden, recognisably migrun's, and unique.
func tempName(base string) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "." + base + ".migrun-tmp-" + hex.EncodeToString(b[:])
}

// lookupOwner resolves attrs.Owner and attrs.Group on the workstation.
// Numeric ids are taken as they are; -1 means "leave unchanged".
func lookupOwner(attrs FileAttrs) (uid, gid int, err error) {
	uid, gid = -1, -1
	if attrs.Owner != "" {
		if uid, err = strconv.Atoi(attrs.Owner); err != nil {
			u, err := user.Lookup(attrs.Owner)
			if err != nil {
				return -1, -1, fmt.Errorf("owner %q: %w", attrs.Owner, err)
			}
			if uid, err = strconv.Atoi(u.Uid); err != nil {
				return -1, -1, fmt.Errorf("owner %q: uid %q: %w", attrs.Owner, u.Uid, err)
			}
		}
	}
	if attrs.Group != "" {
		if gid, err = strconv.Atoi(attrs.Group); err != nil {
			g, err := user.LookupGroup(attrs.Group)
			if err != nil {
				return -1, -1, fmt.Errorf("group %q: %w", attrs.Group, err)
			}
			if gid, err = strconv.Atoi(g.Gid); err != nil {
				return -1, -1, fmt.Errorf("group %q: gid %q: %w", attrs.Group, g.Gid, err)
			}
		}
	}
	return uid, gid, nil
}

// dirOps are the primitives mkdirAll needs from a host.
type dirOps struct {
	isDir func(p string) (bool, error)
	mkdir func(p string) error
	chmod func(p string, m fs.FileMode) error
	wrap  func(op, p string, err error) error
}

// mkdirAll creates p and its missing parents, giving each directory it
// creates exactly perm (no umask), so a plan's mode means the same on every
// host. Existing directories are left as they are.
func mkdirAll(p string, perm fs.FileMode, ops dirOps) error {
	p = path.Clean(p)
	var missing []string
	for dir := p; ; dir = path.Dir(dir) {
		isDir, err := ops.isDir(dir)
		if err == nil {
			if !isDir {
				return ops.wrap("mkdir", dir, syscall.ENOTDIR)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return ops.wrap("mkdir", dir, err)
		}
		missing = append(missing, dir)
		if path.Dir(dir) == dir {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		dir := missing[i]
		if err := ops.mkdir(dir); err != nil {
			// Someone else may have created it meanwhile.
			if isDir, serr := ops.isDir(dir); serr != nil || !isDir {
				return ops.wrap("mkdir", dir, err)
			}
			continue
		}
		if err := ops.chmod(dir, perm&chmodBits); err != nil {
			return ops.wrap("chmod", dir, err)
		}
	}
	return nil
}

// fileError names host, operation and path of a failed file operation.
// os errors already name the operation and path; sftp returns bare
// os.ErrNotExist and friends, which would not say which file was missing
// where.
func fileError(host, op, p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", host, err)
	}
	return fmt.Errorf("%s: %s %s: %w", host, op, p, err)
}
