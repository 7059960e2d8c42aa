package sshconfig

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testEnv is a fixed environment, so results do not depend on the machine.
func testEnv(home string) Env {
	return Env{
		LocalUser: "alice", UID: 1000, Home: home, Hostname: "ws.example.org",
		Getenv: func(k string) (string, bool) {
			v, ok := map[string]string{"KEYS": "/srv/keys"}[k]
			return v, ok
		},
		HomeOf: func(u string) (string, error) {
			if u == "bob" {
				return "/home/bob", nil
			}
			return "", os.ErrNotExist
		},
		InterfaceAddrs: func() ([]net.Addr, error) {
			_, n, _ := net.ParseCIDR("192.0.2.7/24")
			n.IP = net.ParseIP("192.0.2.7")
			return []net.Addr{n}, nil
		},
	}
}

func writeConf(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// What `ssh -G` cannot show on this machine: keywords newer than its
// OpenSSH, refusals of things migrun does not do, and fixed tokens.
func TestResolve(t *testing.T) {
	tests := []struct {
		name, conf, host string
		over             Overrides
		check            func(t *testing.T, o *Options)
		wantErr          string // substring; "" means success
	}{
		{
			name: "Match tagged and localnetwork",
			conf: "Host a\n Tag prod\nMatch tagged prod localnetwork 192.0.2.0/24\n User tagged\nMatch localnetwork 10.0.0.0/8\n Port 2222\n",
			host: "a",
			check: func(t *testing.T, o *Options) {
				if o.User != "tagged" || o.Port != 22 {
					t.Errorf("user %q port %d, want tagged 22", o.User, o.Port)
				}
			},
		},
		{
			name: "Match exec sees the tokens",
			conf: "Match exec \"check %h %n %r %u %d %p\"\n User execd\n",
			host: "Box",
			check: func(t *testing.T, o *Options) {
				if o.User != "execd" {
					t.Errorf("user %q", o.User)
				}
			},
		},
		{
			name:    "CanonicalizeHostname refused, naming the line",
			conf:    "Host *\n CanonicalizeHostname yes\n",
			host:    "a",
			wantErr: "line 2: CanonicalizeHostname yes is not supported",
		},
		{
			name:    "unknown Match attribute names the line",
			conf:    "Host x\n User y\nMatch version 9\n User z\n",
			host:    "a",
			wantErr: "line 3: Match: unsupported attribute version",
		},
		{
			name:    "Include ~ in a system file refused",
			conf:    "Include ~/x\n",
			host:    "a",
			wantErr: "bad include path ~/x",
		},
		{
			name: "ProxyCommand tokens",
			conf: "Host db\n HostName DB.example.com\n User pg\n Port 2200\n ProxyCommand nc -x proxy %h %p # %r %n %%\n",
			host: "db",
			check: func(t *testing.T, o *Options) {
				got, err := o.ProxyCommandLine()
				if want := "exec nc -x proxy db.example.com 2200 # pg db %"; err != nil || got != want {
					t.Errorf("ProxyCommandLine = %q, %v; want %q", got, err, want)
				}
			},
		},
		{
			name: "identity paths expand like ssh",
			conf: "Host db\n IdentityFile ~/.ssh/%r@%h\n IdentityFile ${KEYS}/%n_%u\n IdentityFile ~bob/key\n",
			host: "db",
			over: Overrides{User: "pg"},
			check: func(t *testing.T, o *Options) {
				var got []string
				for _, f := range o.IdentityFiles {
					p, err := o.ExpandPath(f)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, p)
				}
				want := []string{"/home/alice/.ssh/pg@db", "/srv/keys/db_alice", "/home/bob/key"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("expanded %q, want %q", got, want)
				}
				if o.DefaultIdentity {
					t.Error("named identities reported as defaults")
				}
			},
		},
		{
			name:    "undefined variable refused",
			conf:    "UserKnownHostsFile ${NOPE}/kh\n",
			host:    "a",
			wantErr: "${NOPE} has no value",
		},
		{
			name: "defaults",
			conf: "",
			host: "Plain",
			check: func(t *testing.T, o *Options) {
				if o.HostName != "plain" || o.User != "alice" || o.Port != 22 || !o.DefaultIdentity {
					t.Errorf("got %+v", o)
				}
				if want := []string{"/home/alice/.ssh/known_hosts", "/home/alice/.ssh/known_hosts2"}; !reflect.DeepEqual(o.UserKnownHostsFiles, want) {
					t.Errorf("user known hosts %q", o.UserKnownHostsFiles)
				}
			},
		},
		{
			name: "where each value came from",
			conf: "Host a\n\n User u\n",
			host: "a",
			check: func(t *testing.T, o *Options) {
				if !strings.HasSuffix(o.Where["user"], "config line 3") {
					t.Errorf("Where[user] = %q", o.Where["user"])
				}
			},
		},
		{
			name:    "jump loop refused",
			conf:    "Host a\n ProxyJump a\n",
			host:    "a",
			wantErr: "ProxyJump loop via a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			env := testEnv("/home/alice")
			env.Exec = func(cmd string) (int, error) {
				if cmd == "check Box Box alice alice /home/alice 22" { // %h is the name as typed on the first pass
					return 0, nil
				}
				return 1, nil
			}
			file := writeConf(t, dir, "config", tt.conf)
			srcs := []Source{{Path: file, User: !strings.HasPrefix(tt.conf, "Include")}}
			o, err := Resolve(tt.host, srcs, env, tt.over)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestIncludeRelativeToUserSSHDir(t *testing.T) {
	home := t.TempDir()
	writeConf(t, home, ".ssh/conf.d/10-db.conf", "Host db\n User fromincluded\n")
	main := writeConf(t, home, ".ssh/config", "Include conf.d/*.conf\n")
	o, err := Resolve("db", []Source{{Path: main, User: true, CheckPerm: true}}, testEnv(home), Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if o.User != "fromincluded" {
		t.Errorf("user %q: relative Include not read from ~/.ssh", o.User)
	}
}

func TestWritableConfigRefused(t *testing.T) {
	home := t.TempDir()
	p := writeConf(t, home, ".ssh/config", "Host db\n HostName evil.example\n")
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	_, err := Resolve("db", Sources("", testEnv(home)), testEnv(home), Overrides{})
	if err == nil || !strings.Contains(err.Error(), "bad owner or permissions") {
		t.Fatalf("err = %v, want a refusal of the group-writable file", err)
	}
}

func TestSources(t *testing.T) {
	env := testEnv("/home/alice")
	if s := Sources("none", env); s != nil {
		t.Errorf("none: %v", s)
	}
	if s := Sources("", env); len(s) != 2 || s[0].Path != "/home/alice/.ssh/config" || !s[0].CheckPerm || s[1].Path != "/etc/ssh/ssh_config" {
		t.Errorf("default: %+v", s)
	}
	_, err := Resolve("a", Sources("/nonexistent/config", env), env, Overrides{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/config") {
		t.Errorf("missing -F file: %v", err)
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{`a b`, []string{"a", "b"}, false},
		{`"a b" c`, []string{"a b", "c"}, false},
		{`'a "b"'`, []string{`a "b"`}, false},
		{`a\ b`, []string{"a b"}, false},
		{`a\x`, []string{`a\x`}, false},
		{`a # comment`, []string{"a"}, false},
		{`a#notcomment`, []string{"a#notcomment"}, false},
		{`"unclosed`, nil, true},
	}
	for _, tt := range tests {
		got, err := splitArgs(tt.in)
		if (err != nil) != tt.err || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"db1", "db?", true}, {"db12", "db?", false}, {"a.example.com", "*.example.com", true},
		{"example.com", "*.example.com", false}, {"abc", "a**c", true}, {"Db", "db", false},
	}
	for _, tt := range tests {
		if got := matchPattern(tt.s, tt.p); got != tt.want {
			t.Errorf("matchPattern(%q, %q) = %v", tt.s, tt.p, got)
		}
	}
	if got := matchList("web1", "web*,!web1", false); got != -1 {
		t.Errorf("a matching negation = %d, want -1", got)
	}
}
