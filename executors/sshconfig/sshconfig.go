// Package sshconfig resolves the ssh_config settings of one host the way
// OpenSSH's ssh does (readconf.c, ssh.c): the same files in the same order,
// Host and Match blocks (host, originalhost, user, localuser, exec,
// canonical, final, tagged, localnetwork, all), Include, the first value
// obtained winning, IdentityFile accumulating, %-tokens, ${VAR} and ~.
// What it resolves is checked against `ssh -G` on a corpus of files
// (parity_test.go).
//
// It resolves; it does not connect. The executors package dials with the
// result.
package sshconfig

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Env is what ssh takes from the process and the system while reading its
// configuration. CurrentEnv fills it for this process.
type Env struct {
	LocalUser string // the local user's name (%u, Match localuser)
	UID       int    // %i
	Home      string // the local user's home from the password database (%d, ~), as ssh uses, not $HOME
	Hostname  string // this machine's host name (%l, %L, %C)
	// Getenv looks up ${VAR}; nil means os.LookupEnv.
	Getenv func(string) (string, bool)
	// Exec runs a Match exec command and returns its exit status; nil
	// runs it with $SHELL -c (or /bin/sh), stdin and stdout on /dev/null.
	Exec func(command string) (int, error)
	// HomeOf resolves ~user; nil uses the password database.
	HomeOf func(user string) (string, error)
	// InterfaceAddrs lists this machine's addresses for Match
	// localnetwork; nil uses net.InterfaceAddrs.
	InterfaceAddrs func() ([]net.Addr, error)
}

// CurrentEnv describes this process as ssh would see it.
func CurrentEnv() (Env, error) {
	u, err := user.Current()
	if err != nil {
		return Env{}, fmt.Errorf("ssh config: local user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	host, err := os.Hostname()
	if err != nil {
		return Env{}, fmt.Errorf("ssh config: host name: %w", err)
	}
	return Env{LocalUser: u.Username, UID: uid, Home: u.HomeDir, Hostname: host}, nil
}

func (e Env) getenv(name string) (string, bool) {
	if e.Getenv != nil {
		return e.Getenv(name)
	}
	return os.LookupEnv(name)
}

func (e Env) homeOf(name string) (string, error) {
	if e.HomeOf != nil {
		return e.HomeOf(name)
	}
	u, err := user.Lookup(name)
	if err != nil {
		return "", err
	}
	return u.HomeDir, nil
}

// Source is one configuration file to read.
type Source struct {
	Path string
	// User marks a user's file (~/.ssh/config or one given with -F):
	// relative Include paths are under ~/.ssh and may start with ~.
	// Otherwise they are under /etc/ssh.
	User bool
	// CheckPerm refuses the file unless owned by root or the user and
	// not writable by others, as ssh does for ~/.ssh/config.
	CheckPerm bool
	// Required makes a missing file an error (a file named with -F).
	Required bool
}

// Sources are the files ssh reads: file as given with -F, or with file ""
// the user's ~/.ssh/config and then /etc/ssh/ssh_config. "none" reads
// nothing.
func Sources(file string, env Env) []Source {
	switch file {
	case "none":
		return nil
	case "":
		return []Source{
			{Path: filepath.Join(env.Home, ".ssh", "config"), User: true, CheckPerm: true},
			{Path: "/etc/ssh/ssh_config"},
		}
	}
	return []Source{{Path: file, User: true, Required: true}}
}

// Overrides are values given outside the files (migrun's plan, as ssh's
// command line): they win over every file, and Match user sees User.
type Overrides struct {
	User          string
	Port          int
	IdentityFiles []string // offered before the files' ones
	ProxyJump     string
}

// Error is a refusal tied to a place in a file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("ssh config %s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("ssh config %s line %d: %s", e.File, e.Line, e.Msg)
}

// Options are the settings resolved for one host, defaults filled, as
// `ssh -G` prints them.
type Options struct {
	Host     string // the name asked for (%n)
	HostName string // what to connect to: HostName with %h applied, lower case unless an address
	User     string
	Port     int
	// IdentityFiles are as written (~ and tokens unexpanded, as ssh -G
	// prints them); ExpandPath expands one. The defaults are included
	// when nothing named any.
	IdentityFiles    []string
	DefaultIdentity  bool // IdentityFiles are ssh's defaults, not named by anyone
	IdentitiesOnly   bool
	CertificateFiles []string
	// ProxyJump is the jump spec as ssh -G prints it; empty when none.
	ProxyJump string
	// ProxyCommand is the command as written; empty when none.
	ProxyCommand string
	// UserKnownHostsFiles are expanded (~, tokens, ${VAR}), as ssh -G
	// prints them; empty for "none".
	UserKnownHostsFiles []string
	// GlobalKnownHostsFiles are as written; empty for "none".
	GlobalKnownHostsFiles []string
	HashKnownHosts        bool
	// StrictHostKeyChecking is "yes", "no", "ask" or "accept-new".
	StrictHostKeyChecking string
	HostKeyAlias          string
	ConnectTimeout        int // seconds; 0 when unset

	// Where tells, for a keyword that was set, the file and line it came
	// from ("ssh_config line 3"), for messages.
	Where map[string]string

	env    Env
	tokens tokens
}

// ExpandPath expands ~, the %-tokens and ${VAR} in an IdentityFile,
// CertificateFile or known_hosts path, as ssh does before opening it.
func (o *Options) ExpandPath(p string) (string, error) {
	p, err := tildeExpand(p, o.env)
	if err != nil {
		return "", err
	}
	return percentExpand(p, o.tokens, true, o.env.getenv)
}

// ProxyCommandLine is the shell command ssh runs for ProxyCommand: "exec "
// and the command with %h %k %n %p %r expanded. Empty when there is none.
func (o *Options) ProxyCommandLine() (string, error) {
	if o.ProxyCommand == "" {
		return "", nil
	}
	t := tokens{'h': o.HostName, 'k': o.tokens['k'], 'n': o.Host, 'p': strconv.Itoa(o.Port), 'r': o.User}
	cmd, err := percentExpand(o.ProxyCommand, t, false, nil)
	if err != nil {
		return "", fmt.Errorf("ProxyCommand (%s): %w", o.Where["proxycommand"], err)
	}
	return "exec " + cmd, nil
}

// defaultIdentities are the files ssh tries when none is named, in its
// order.
var defaultIdentities = []string{
	"~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519",
	"~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa",
}

// Resolve reads srcs for host and returns its settings.
func Resolve(host string, srcs []Source, env Env, over Overrides) (*Options, error) {
	if host == "" {
		return nil, fmt.Errorf("ssh config: no host name")
	}
	r := &resolver{env: env, hostArg: host, host: host, set: map[string]string{}}
	if err := r.applyOverrides(over); err != nil {
		return nil, err
	}
	if err := r.readAll(srcs, false); err != nil {
		return nil, err
	}
	h, err := r.expandedHostName()
	if err != nil {
		return nil, err
	}
	if !isAddr(h) {
		h = strings.ToLower(h)
	}
	if r.canonicalize != "" && r.canonicalize != "no" {
		return nil, &Error{File: r.setFile("canonicalizehostname"), Msg: "CanonicalizeHostname " + r.canonicalize +
			" is not supported by migrun (it would look the name up in DNS): set CanonicalizeHostname no for this host or write the full name in the plan"}
	}
	if r.wantFinal {
		// ssh re-reads every file with the resolved name for Match final
		// and Match canonical; what is already set stays set.
		r.hostName, r.hostNameSet = h, true
		r.host = h
		if err := r.readAll(srcs, true); err != nil {
			return nil, err
		}
	}
	return r.options(h)
}

func isAddr(h string) bool { return net.ParseIP(h) != nil }

// readAll reads every source in order.
func (r *resolver) readAll(srcs []Source, final bool) error {
	r.final = final
	for _, s := range srcs {
		active := true
		found, err := r.readFile(s.Path, s.User, s.CheckPerm, false, &active, 0)
		if err != nil {
			return err
		}
		if !found && s.Required {
			return &Error{File: s.Path, Msg: "cannot open it"}
		}
	}
	return nil
}

// options fills the defaults ssh fills and builds the result.
func (r *resolver) options(host string) (*Options, error) {
	o := &Options{
		Host: r.hostArg, HostName: host, User: r.user, Port: r.port,
		IdentityFiles: r.identityFiles, IdentitiesOnly: r.identitiesOnly,
		CertificateFiles: r.certificateFiles, HashKnownHosts: r.hashKnownHosts,
		StrictHostKeyChecking: r.strict, HostKeyAlias: strings.ToLower(r.hostKeyAlias),
		ConnectTimeout: r.connectTimeout, Where: r.set, env: r.env,
	}
	if o.User == "" {
		o.User = r.env.LocalUser
	}
	if o.Port == 0 {
		o.Port = 22
	}
	if len(o.IdentityFiles) == 0 {
		o.IdentityFiles, o.DefaultIdentity = append([]string(nil), defaultIdentities...), true
	}
	if o.StrictHostKeyChecking == "" {
		o.StrictHostKeyChecking = "ask"
	}
	if r.proxyCommand != "none" {
		o.ProxyCommand = r.proxyCommand
	}
	if r.jumpHost != "" && !(r.jumpHost == "none" && r.jumpPort == 0 && r.jumpUser == "") {
		o.ProxyJump = r.jumpSpec()
		jumpUser := r.jumpUser
		if jumpUser == "" {
			jumpUser = o.User
		}
		jumpPort := r.jumpPort
		if jumpPort <= 0 {
			jumpPort = 22
		}
		if r.jumpHost == host && jumpPort == o.Port && jumpUser == o.User {
			return nil, &Error{File: r.setFile("proxyjump"), Msg: "ProxyJump loop via " + r.jumpHost}
		}
	}
	keyAlias := o.HostKeyAlias
	if keyAlias == "" {
		keyAlias = r.hostArg
	}
	short, _, _ := strings.Cut(r.env.Hostname, ".")
	o.tokens = tokens{
		'C': connectionHash(r.env.Hostname, host, o.Port, o.User),
		'L': short, 'i': strconv.Itoa(r.env.UID), 'k': keyAlias, 'l': r.env.Hostname,
		'n': r.hostArg, 'p': strconv.Itoa(o.Port), 'd': r.env.Home, 'h': host,
		'r': o.User, 'u': r.env.LocalUser,
	}
	global := r.globalKnownHosts
	if global == nil {
		global = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	}
	if !(len(global) == 1 && strings.EqualFold(global[0], "none")) {
		o.GlobalKnownHostsFiles = global
	}
	userFiles := r.userKnownHosts
	if userFiles == nil {
		userFiles = []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"}
	}
	if !(len(userFiles) == 1 && strings.EqualFold(userFiles[0], "none")) {
		for _, f := range userFiles {
			p, err := o.ExpandPath(f)
			if err != nil {
				return nil, &Error{File: r.setFile("userknownhostsfile"), Msg: "UserKnownHostsFile: " + err.Error()}
			}
			o.UserKnownHostsFiles = append(o.UserKnownHostsFiles, p)
		}
	}
	return o, nil
}

// setFile is where keyword was set, for an Error's File field.
func (r *resolver) setFile(keyword string) string {
	if w, ok := r.set[keyword]; ok {
		return w
	}
	return "(plan)"
}

// jumpSpec prints the jump hosts as ssh -G does.
func (r *resolver) jumpSpec() string {
	var b strings.Builder
	if r.jumpExtra != "" {
		b.WriteString(r.jumpExtra + ",")
	}
	if r.jumpUser != "" {
		b.WriteString(r.jumpUser + "@")
	}
	numeric := strings.Contains(r.jumpHost, ":") || strings.Trim(r.jumpHost, "0123456789.") == ""
	if numeric {
		b.WriteString("[" + r.jumpHost + "]")
	} else {
		b.WriteString(r.jumpHost)
	}
	if r.jumpPort > 0 {
		b.WriteString(":" + strconv.Itoa(r.jumpPort))
	}
	return b.String()
}

// expandedHostName is HostName with %h (the name asked for) applied, or
// that name.
func (r *resolver) expandedHostName() (string, error) {
	if !r.hostNameSet {
		return r.hostArg, nil
	}
	h, err := percentExpand(r.hostName, tokens{'h': r.hostArg}, false, nil)
	if err != nil {
		return "", &Error{File: r.setFile("hostname"), Msg: "HostName: " + err.Error()}
	}
	return h, nil
}
