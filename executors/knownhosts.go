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

// hostKeyStore checks host keys against the known_hosts files ssh would
// read for a host (ssh_config UserKnownHostsFile and GlobalKnownHostsFile)
// and, when allowed, records new ones in the first user file.
type hostKeyStore struct {
	userFiles   []string
	globalFiles []string
	acceptNew   bool
	hash        bool // HashKnownHosts: record the name hashed
}

// recordFile is where a new key goes, as ssh does: the first user file.
func (s *hostKeyStore) recordFile() string {
	if len(s.userFiles) == 0 {
		return ""
	}
	return s.userFiles[0]
}

// load reads the files that exist; a missing file holds no keys, so with
// none every host is unknown (and an accepted key creates the first).
func (s *hostKeyStore) load() (*knownhosts.HostKeyDB, error) {
	var files []string
	for _, f := range append(append([]string(nil), s.userFiles...), s.globalFiles...) {
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		files = append(files, f)
	}
	db, err := knownhosts.NewDB(files...)
	if err != nil {
		return nil, fmt.Errorf("known hosts: %w", err)
	}
	return db, nil
}

// callback returns the host key callback for a host known as keyName
// (host:port, or HostKeyAlias:port) and the key algorithms to ask for.
// Restricting the algorithms to the types known for the host matters:
// otherwise the server may offer a type not in the file and a known host
// looks like a changed key. A host covered by @cert-authority is asked
// for its certificate first and may still offer a plain key, which is
// then an unknown key, not a changed one.
func (s *hostKeyStore) callback(keyName string) (ssh.HostKeyCallback, []string, error) {
	db, err := s.load()
	if err != nil {
		return nil, nil, err
	}
	inner := db.HostKeyCallback()
	known := db.HostKeys(keyName)
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if _, ok := remote.(*net.TCPAddr); !ok {
			// Through a ProxyCommand there is no peer address; ssh checks
			// the name only (CheckHostIP is off by default) and so do we.
			remote = &net.TCPAddr{IP: net.IPv4zero}
		}
		err := inner(hostname, remote, key)
		switch {
		case err == nil:
			return nil
		case isHostKeyChanged(err) && !onlyAuthorities(known, key):
			return changedKeyError(hostname, key, err)
		case isHostKeyChanged(err), knownhosts.IsHostUnknown(err):
			return s.unknown(hostname, key, len(known) > 0)
		default:
			return fmt.Errorf("known hosts: %w", err)
		}
	}
	algos := db.HostKeyAlgorithms(keyName)
	if hasCertAlgo(algos) {
		for _, a := range ssh.SupportedAlgorithms().HostKeys {
			if !strings.Contains(a, "-cert-") {
				algos = append(algos, a)
			}
		}
	}
	return cb, algos, nil
}

// unknown handles a key no line vouches for: recorded when new keys are
// accepted, refused otherwise.
func (s *hostKeyStore) unknown(hostname string, key ssh.PublicKey, authorityOnly bool) error {
	file := s.recordFile()
	why := ""
	if authorityOnly {
		why = " (known hosts trusts a certificate authority for it, but it presented a plain key, not a certificate)"
	}
	if !s.acceptNew {
		where := "add it to " + file
		if file == "" {
			where = "add it to a known_hosts file (UserKnownHostsFile is none)"
		}
		return fmt.Errorf("%w: %s presented %s key %s%s; if that is the host's key, rerun with --accept-new-host-keys or %s",
			ErrUnknownHostKey, hostname, key.Type(), ssh.FingerprintSHA256(key), why, where)
	}
	if file == "" {
		return fmt.Errorf("%w: %s presented %s key %s and UserKnownHostsFile is none: there is nowhere to record it",
			ErrUnknownHostKey, hostname, key.Type(), ssh.FingerprintSHA256(key))
	}
	if err := s.append(file, hostname, key); err != nil {
		return fmt.Errorf("record new host key of %s: %w", hostname, err)
	}
	return nil
}

// onlyAuthorities reports whether every key known for the host is a
// certificate authority and key is a plain key: then the host is not
// known by key at all.
func onlyAuthorities(known []knownhosts.PublicKey, key ssh.PublicKey) bool {
	if _, isCert := key.(*ssh.Certificate); isCert || len(known) == 0 {
		return false
	}
	for _, k := range known {
		if !k.Cert {
			return false
		}
	}
	return true
}

func hasCertAlgo(algos []string) bool {
	for _, a := range algos {
		if strings.Contains(a, "-cert-") {
			return true
		}
	}
	return false
}

func isHostKeyChanged(err error) bool { return knownhosts.IsHostKeyChanged(err) }

// changedKeyError describes a host whose key differs from the recorded one:
// both fingerprints and where the old one is, so the user can check the
// host before deleting the line.
func changedKeyError(hostname string, key ssh.PublicKey, err error) error {
	var ke *xknownhosts.KeyError
	var known []string
	file := ""
	if errors.As(err, &ke) {
		for _, w := range ke.Want {
			known = append(known, fmt.Sprintf("%s %s (%s:%d)", w.Key.Type(), ssh.FingerprintSHA256(w.Key), w.Filename, w.Line))
			if file == "" {
				file = w.Filename
			}
		}
	}
	return fmt.Errorf("%w: %s now presents %s key %s but known hosts has %s. Someone may be intercepting the connection, or the host was reinstalled. Refusing to connect; if the change is expected, verify the new key and remove the old one (ssh-keygen -R %s -f %s)",
		ErrChangedHostKey, hostname, key.Type(), ssh.FingerprintSHA256(key), strings.Join(known, ", "), Quote(knownhosts.Normalize(hostname)), file)
}

// append records key for hostname at the end of file, creating it (0600,
// in a 0700 directory) when absent; hashed when HashKnownHosts is set.
// Only the name is recorded, as ssh does with CheckHostIP off (its
// default).
func (s *hostKeyStore) append(file, hostname string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	// Hosts connect concurrently: the kernel lock (one per open file)
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
	name := knownhosts.Normalize(hostname)
	if s.hash {
		name = xknownhosts.HashHostname(name)
	}
	if _, err := io.WriteString(f, knownhosts.Line([]string{name}, key)+"\n"); err != nil {
		return err
	}
	return f.Close()
}
