package steps

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// A direct copy (copy's `direct: true`) has the source host send the bytes
// to the target itself, with OpenSSH's ssh client, instead of relaying them
// through the workstation: one network hop and no relay on the workstation,
// like scp run on the source.
//
// The source gets access for this copy only: migrun makes an ed25519 key
// pair, authorizes its public key on the target (`restrict`, tagged with a
// random comment) and writes the private key and the target's host key, the
// one migrun itself verified, into a 0700 directory on the source. The
// source's ssh then trusts exactly that host key. Afterwards (success,
// failure or cancel) the authorized_keys line and the directory are
// removed.

// directLink is the access a direct copy set up.
type directLink struct {
	src, dst executors.Executor
	target   executors.SSHEndpoint
	place    keyPlace // where the target's sshd reads the key
	dir      string   // on the source: the key and known_hosts
	tag      string   // comment of the authorized_keys line
}

// directTarget returns where the source should connect, or why a direct
// copy cannot go there.
func directTarget(dst executors.Executor, to location) (executors.SSHEndpoint, error) {
	ep, ok := executors.EndpointOf(dst)
	switch {
	case !ok:
		return ep, fmt.Errorf("direct: %s is not an SSH host (direct copies go between two SSH hosts)", to.Host)
	case !ep.Direct:
		return ep, fmt.Errorf("direct: migrun reaches %s through a jump host, so the source may not reach it; copy without direct", to.Host)
	case ep.HostKey == nil:
		return ep, fmt.Errorf("direct: no verified host key for %s", to.Host)
	}
	return ep, nil
}

func (ep sshEndpoint) String() string {
	return ep.User + "@" + net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
}

type sshEndpoint executors.SSHEndpoint

// openDirect authorizes the source on the target for this copy. It
// returns an error wrapping errDirectRefused when the target's sshd reads
// no keys file migrun could add to.
func openDirect(ctx context.Context, src, dst executors.Executor, to location) (*directLink, error) {
	ep, err := directTarget(dst, to)
	if err != nil {
		return nil, err
	}
	place, err := findKeyPlace(ctx, dst, ep.User)
	if err != nil {
		return nil, fmt.Errorf("direct: %w", err)
	}
	if place.file == "" {
		return nil, fmt.Errorf("%w: on %s, %s", errDirectRefused, to.Host, place.why)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	random := make([]byte, 6)
	rand.Read(random)
	l := &directLink{src: src, dst: dst, target: ep, place: place, tag: "migrun-direct-copy-" + hex.EncodeToString(random)}
	block, err := ssh.MarshalPrivateKey(priv, l.tag)
	if err != nil {
		return nil, err
	}

	res, err := src.Run(ctx, executors.Command{Argv: []string{"mktemp", "-d", "/tmp/migrun-direct-XXXXXXXX"}})
	if err != nil {
		return nil, fmt.Errorf("direct: temporary directory on %s: %w", src.Name(), err)
	}
	l.dir = strings.TrimSpace(string(res.Stdout))
	if !strings.HasPrefix(l.dir, "/tmp/migrun-direct-") {
		return nil, fmt.Errorf("direct: mktemp on %s gave %q", src.Name(), l.dir)
	}
	addr := knownhosts.Normalize(net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)))
	files := []struct {
		name string
		data []byte
	}{
		{"id", pem.EncodeToMemory(block)},
		{"known_hosts", []byte(knownhosts.Line([]string{addr}, ep.HostKey) + "\n")},
	}
	for _, f := range files {
		if err := src.WriteFile(ctx, l.dir+"/"+f.name, f.data, executors.FileAttrs{Mode: 0o600}); err != nil {
			l.close(ctx)
			return nil, fmt.Errorf("direct: %w", err)
		}
	}
	line := "restrict " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + l.tag
	if _, err := dst.Run(ctx, executors.Command{Argv: []string{"sh", "-c", place.authorizeScript(), "sh", place.file, line},
		Become: place.become()}); err != nil {
		l.close(ctx)
		return nil, fmt.Errorf("direct: authorize %s in %s on %s: %w", src.Name(), place.file, dst.Name(), err)
	}
	return l, nil
}

// close removes the access, even when ctx has ended: a key left authorized
// would outlive the run.
func (l *directLink) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := l.dst.Run(ctx, executors.Command{Argv: []string{"sh", "-c", revokeScript, "sh", l.place.file, l.tag},
		Become: l.place.become()})
	if err != nil {
		err = fmt.Errorf("direct: remove the key of this copy (%s) from %s on %s: %w", l.tag, l.place.file, l.dst.Name(), err)
	}
	if l.dir != "" {
		if _, rerr := l.src.Run(ctx, executors.Command{Argv: []string{"rm", "-rf", "--", l.dir}}); rerr != nil && err == nil {
			err = fmt.Errorf("direct: remove %s on %s: %w", l.dir, l.src.Name(), rerr)
		}
	}
	return err
}

// command is what runs on the source: the file from offset, piped into
// ssh and appended on the target to the part file (which OpenWriter has
// truncated to offset); sums syncs it while it hashes it. aes128-gcm is
// the fastest cipher with AES-NI.
func (l *directLink) command(srcPath, part string, offset int64) executors.Command {
	ssh := []string{"ssh", "-i", l.dir + "/id", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + l.dir + "/known_hosts", "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "Compression=no", "-o", "ConnectTimeout=15",
		"-c", "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com",
		"-p", strconv.Itoa(l.target.Port), "-l", l.target.User, "--", l.target.Host,
		"cat >> " + executors.Quote(part)}
	if offset == 0 {
		// ssh reads the file itself: no tail and no pipe to copy through.
		return executors.Command{Script: "< " + executors.Quote(srcPath) + " " + executors.QuoteArgv(ssh)}
	}
	script := "tail -c +" + strconv.FormatInt(offset+1, 10) + " -- " + executors.Quote(srcPath) + " | " + executors.QuoteArgv(ssh)
	return executors.Command{Script: script}
}

// send runs the transfer of one file, reporting progress from the part
// file's size on the target.
func (l *directLink) send(ctx context.Context, srcPath, part string, offset int64, bar Bar) error {
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		last := offset
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if fi, err := l.dst.Stat(ctx, part); err == nil && fi.Size > last {
					bar.Add(fi.Size - last)
					last = fi.Size
				}
			}
		}
	}()
	_, err := l.src.Run(ctx, l.command(srcPath, part, offset))
	close(stop)
	<-polled
	return err
}

// syncAndHashScript flushes the file $1 to disk while hashing it from the
// page cache, the two at once: a direct copy's bytes never pass migrun,
// so the target reads them back, and neither waits for the other (on
// the benchmark a 1 GiB sync took 0.7 s and the hash 0.9 s).
const syncAndHashScript = `sync -- "$1" & s=$!
if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r "$1"; else sha256sum -- "$1"; fi
rc=$?
wait $s || exit 1
exit $rc`

// sums returns the sha256 of the source file and of the part, computed
// on both hosts at once, the part synced to disk on the way.
func (l *directLink) sums(ctx context.Context, srcPath, part string) (srcSum, dstSum string, err error) {
	srcSum, res, errA, errB := hostcmd.AtOnce(
		func() (string, error) { return l.src.Checksum(ctx, srcPath) },
		func() (executors.Result, error) {
			return l.dst.Run(ctx, executors.Command{Argv: []string{"sh", "-c", syncAndHashScript, "sh", part}})
		})
	if errA != nil {
		errA = fmt.Errorf("sha256 of %s:%s: %w", l.src.Name(), srcPath, errA)
	}
	if errB == nil {
		f := strings.Fields(string(res.Stdout))
		if len(f) == 0 || len(f[0]) != 64 {
			errB = fmt.Errorf("unexpected output %q", res.Stdout)
		} else {
			dstSum = strings.ToLower(f[0])
		}
	}
	if errB != nil {
		errB = fmt.Errorf("sync and sha256 of %s:%s: %w", l.dst.Name(), part, errB)
	}
	return srcSum, dstSum, errors.Join(errA, errB)
}

// describeDirect is the dry run's account of the access a direct copy
// sets up.
func describeDirect(from, to location, ep executors.SSHEndpoint, place keyPlace) string {
	if place.file == "" {
		return fmt.Sprintf("not directly: on %s, %s; the copy goes through the workstation", to.Host, place.why)
	}
	return fmt.Sprintf("directly: %s sends it to %s with ssh, using a key made for this copy (authorized on %s with restrict in %s, removed after) and %s's verified host key",
		from.Host, ep.User+"@"+net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)), to.Host, place.file, to.Host)
}
