package steps

import (
	"errors"
	"fmt"
	"testing"

	"github.com/migrun/migrun/executors"
)

func TestKeyPlace(t *testing.T) {
	tests := []struct {
		name, sshdT string
		unreadable  bool
		want        keyPlace
	}{
		{name: "default", sshdT: "pubkeyauthentication yes\nauthorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2\nauthorizedkeyscommand none\n",
			want: keyPlace{file: "/root/.ssh/authorized_keys", from: "sshd's AuthorizedKeysFile"}},
		{name: "central, tokens", sshdT: "authorizedkeysfile /etc/ssh/authorized_keys/%u %h/.ssh/authorized_keys\n",
			want: keyPlace{file: "/etc/ssh/authorized_keys/root", asRoot: true, from: "sshd's AuthorizedKeysFile"}},
		{name: "by uid", sshdT: "authorizedkeysfile /var/lib/keys/%U%%\n",
			want: keyPlace{file: "/var/lib/keys/0%", asRoot: true, from: "sshd's AuthorizedKeysFile"}},
		{name: "FreeIPA: command and the default file", sshdT: "authorizedkeysfile .ssh/authorized_keys\nauthorizedkeyscommand /usr/bin/sss_ssh_authorizedkeys\n",
			want: keyPlace{file: "/root/.ssh/authorized_keys", from: "sshd's AuthorizedKeysFile"}},
		{name: "command only", sshdT: "authorizedkeysfile none\nauthorizedkeyscommand /usr/bin/sss_ssh_authorizedkeys\n",
			want: keyPlace{why: "sshd reads keys only from AuthorizedKeysCommand (/usr/bin/sss_ssh_authorizedkeys), where migrun cannot add one"}},
		{name: "no file", sshdT: "authorizedkeysfile none\n", want: keyPlace{why: "sshd reads no keys file (AuthorizedKeysFile none)"}},
		{name: "no keys at all", sshdT: "pubkeyauthentication no\n", want: keyPlace{why: "sshd does not accept keys (PubkeyAuthentication no)"}},
		{name: "sshd -T not available", unreadable: true,
			want: keyPlace{file: "/root/.ssh/authorized_keys", from: "the default: sshd -T could not be run to read sshd's settings"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := parseSSHDKeys(tt.sshdT)
			if tt.unreadable {
				s = sshdKeySettings{pubkey: true, files: []string{".ssh/authorized_keys"}}
			}
			if got := s.place("root", "/root", "0"); got != tt.want {
				t.Errorf("place = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRefusedByTarget(t *testing.T) {
	refused := &executors.ExitError{Host: "engine", Command: "ssh ...", ExitCode: 255, Stderr: "root@10.0.0.2: Permission denied (publickey)."}
	if !refusedByTarget(fmt.Errorf("copy: %w", refused)) {
		t.Error("a publickey refusal is not recognised")
	}
	for _, err := range []error{
		&executors.ExitError{ExitCode: 255, Stderr: "ssh: connect to host 10.0.0.2 port 22: Connection refused"},
		&executors.ExitError{ExitCode: 1, Stderr: "cat: /x: Permission denied"},
		errors.New("Permission denied"),
	} {
		if refusedByTarget(err) {
			t.Errorf("%v taken for a key refusal", err)
		}
	}
}
