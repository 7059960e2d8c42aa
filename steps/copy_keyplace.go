package steps

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/migrun/migrun/executors"
)

// This file decides where a direct copy's temporary key goes on the
// target: where that host's sshd reads the login user's keys. A host may
// keep keys in a central AuthorizedKeysFile (/etc/ssh/authorized_keys/%u)
// or only behind an AuthorizedKeysCommand (FreeIPA/SSSD); a key written to
// ~/.ssh/authorized_keys there is never read and the source's ssh fails
// with "Permission denied (publickey)".

// keyPlace is where the target's sshd reads the login user's keys.
type keyPlace struct {
	file   string // absolute path; "" when no file can be used
	asRoot bool   // outside the user's home (a central file): written as root
	from   string // how it was found, for the dry run
	why    string // file == "": why a direct copy cannot authorize a key
}

// sshdKeySettings are the settings of `sshd -T` that decide keyPlace.
type sshdKeySettings struct {
	pubkey   bool
	files    []string // AuthorizedKeysFile as sshd reports it; nil for none
	command  string   // AuthorizedKeysCommand; "" for none
	readable bool     // sshd -T answered
}

// parseSSHDKeys reads `sshd -T` output.
func parseSSHDKeys(out string) sshdKeySettings {
	s := sshdKeySettings{pubkey: true, readable: true, files: []string{".ssh/authorized_keys", ".ssh/authorized_keys2"}}
	for _, line := range strings.Split(out, "\n") {
		key, value, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToLower(key) {
		case "pubkeyauthentication":
			s.pubkey = value != "no"
		case "authorizedkeysfile":
			s.files = strings.Fields(value)
			if len(s.files) == 1 && s.files[0] == "none" {
				s.files = nil
			}
		case "authorizedkeyscommand":
			if value != "none" {
				s.command = value
			}
		}
	}
	return s
}

// place turns the settings into where the key goes for a user with home
// and uid, expanding sshd's %% %h %u %U and making relative paths
// relative to home, as sshd does.
func (s sshdKeySettings) place(user, home, uid string) keyPlace {
	switch {
	case !s.pubkey:
		return keyPlace{why: "sshd does not accept keys (PubkeyAuthentication no)"}
	case len(s.files) == 0 && s.command != "":
		return keyPlace{why: "sshd reads keys only from AuthorizedKeysCommand (" + s.command + "), where migrun cannot add one"}
	case len(s.files) == 0:
		return keyPlace{why: "sshd reads no keys file (AuthorizedKeysFile none)"}
	}
	f := strings.NewReplacer("%%", "%", "%h", home, "%u", user, "%U", uid).Replace(s.files[0])
	if !path.IsAbs(f) {
		f = path.Join(home, f)
	}
	p := keyPlace{file: path.Clean(f), from: "sshd's AuthorizedKeysFile"}
	if !s.readable {
		p.from = "the default: sshd -T could not be run to read sshd's settings"
	}
	p.asRoot = !strings.HasPrefix(p.file, strings.TrimSuffix(home, "/")+"/")
	return p
}

// findKeyPlace asks the target where its sshd reads user's keys. It only
// reads, so the dry run can say where the key would go. `sshd -T` needs
// root; without it the default file is assumed, and a refusal at
// transfer time still sends the copy through the workstation.
func findKeyPlace(ctx context.Context, dst executors.Executor, user string) (keyPlace, error) {
	res, err := dst.Run(ctx, executors.Command{Argv: []string{"sh", "-c", `printf '%s\n' "$HOME"; id -u`}, ReadOnly: true})
	if err != nil {
		return keyPlace{}, fmt.Errorf("home directory of %s on %s: %w", user, dst.Name(), err)
	}
	home, uid, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), "\n")
	if !path.IsAbs(home) {
		return keyPlace{}, fmt.Errorf("home directory of %s on %s: %q", user, dst.Name(), home)
	}
	settings := sshdKeySettings{pubkey: true, files: []string{".ssh/authorized_keys"}}
	res, err = dst.Run(ctx, executors.Command{
		Argv:     []string{"sh", "-c", `PATH="$PATH:/usr/sbin:/sbin" exec sshd -T -C "user=$1"`, "sh", user},
		Become:   "root",
		ReadOnly: true,
		Fact:     "sshd settings for " + user + " (sshd -T)",
	})
	switch {
	case err == nil:
		settings = parseSSHDKeys(string(res.Stdout))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, executors.ErrOutcomeUnknown):
		return keyPlace{}, err
	default:
		settings.readable = false
	}
	return settings.place(user, home, strings.TrimSpace(uid)), nil
}

// describe is the dry run's account of where the key goes.
func (p keyPlace) describe() string {
	if p.file == "" {
		return "not directly: " + p.why + "; the copy goes through the workstation"
	}
	how := ""
	if p.asRoot {
		how = ", written as root"
	}
	return "the key goes in " + p.file + " (" + p.from + how + ")"
}

// authorizeScript appends $2 to the keys file $1, creating it and its
// directory (0700 in a home, 0755 for a central directory).
func (p keyPlace) authorizeScript() string {
	mask := "077"
	if p.asRoot {
		mask = "022"
	}
	return `umask ` + mask + ` && mkdir -p "$(dirname "$1")" && printf '%s\n' "$2" >> "$1"`
}

// revokeScript removes the lines holding $2 from the keys file $1;
// cat > keeps the file's inode, owner and mode, and grep -v exits 1 when
// no line is left, which is fine.
const revokeScript = `f="$1"; [ -f "$f" ] || exit 0; grep -v -F -e "$2" "$f" > "$f.migrun-tmp"; cat "$f.migrun-tmp" > "$f" && rm -f "$f.migrun-tmp"`

func (p keyPlace) become() string {
	if p.asRoot {
		return "root"
	}
	return ""
}

// errDirectRefused marks a direct copy that cannot or could not go
// direct: the copy then goes through the workstation.
var errDirectRefused = errors.New("direct copy not possible")

// refusedByTarget reports whether err is the source's ssh being refused
// by the target's sshd (the key is not where sshd looks, AllowUsers, a
// Match block...), before any byte was sent.
func refusedByTarget(err error) bool {
	var ee *executors.ExitError
	return errors.As(err, &ee) && ee.ExitCode == 255 && strings.Contains(ee.Stderr, "Permission denied")
}
