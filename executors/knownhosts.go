package executors

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// loadKnownHosts reads file; a missing file is an empty database, so every
// host is unknown (and AcceptNewHostKeys creates the file).
func loadKnownHosts(file string) (*knownhosts.HostKeyDB, error) {
	_, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return knownhosts.NewDB()
	}
	db, err := knownhosts.NewDB(file)
	if err != nil {
		return nil, fmt.Errorf("known hosts: %w", err)
	}
	return db, nil
}

func isHostKeyChanged(err error) bool { return knownhosts.IsHostKeyChanged(err) }
func isHostUnknown(err error) bool    { return knownhosts.IsHostUnknown(err) }

// changedKeyError describes a host whose key differs from the recorded one:
// both fingerprints and where the old one is, so the user can check the
// host before deleting the line.
func changedKeyError(hostname string, key ssh.PublicKey, err error, file string) error {
	var ke *xknownhosts.KeyError
	var known []string
	if errors.As(err, &ke) {
		for _, w := range ke.Want {
			known = append(known, fmt.Sprintf("%s %s (%s:%d)", w.Key.Type(), ssh.FingerprintSHA256(w.Key), w.Filename, w.Line))
		}
	}
	return fmt.Errorf("%w: %s now presents %s key %s but known hosts has %s. Someone may be intercepting the connection, or the host was reinstalled. Refusing to connect; if the change is expected, verify the new key and remove the old one (ssh-keygen -R %s -f %s)",
		ErrChangedHostKey, hostname, key.Type(), ssh.FingerprintSHA256(key), strings.Join(known, ", "), Quote(knownhosts.Normalize(hostname)), file)
}

// append records key for hostname at the end of the known_hosts file,
// creating it (0600, in a 0700 directory) when absent.
func (s *hostKeyStore) append(hostname string, remote net.Addr, key ssh.PublicKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(s.file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	// Hosts connect concurrently, each with its own store: the kernel lock
	// keeps two new keys from being written into each other.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	// A file whose last line lacks its newline would have our line glued
	// onto it.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			if _, err := io.WriteString(f, "\n"); err != nil {
				return err
			}
		}
	}
	if err := knownhosts.WriteKnownHost(f, hostname, remote, key); err != nil {
		return err
	}
	return f.Close()
}
