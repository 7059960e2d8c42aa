package executors

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors/sshconfig"
)

// sshHop is one fully resolved host of a connection chain.
type sshHop struct {
	alias string // the name as written in the plan or ProxyJump, for messages
	host  string // what to connect to (ssh_config HostName applied)
	port  int
	user  string
	// identityFiles are offered first. Those named by the plan must load;
	// ones from ssh_config or the defaults are skipped when missing.
	identityFiles []identityFile
	// proxyCommand, when set, is the shell command whose stdin and stdout
	// carry the connection (ssh_config ProxyCommand, "exec" prefixed).
	proxyCommand string
	// keyName is the name the host key is looked up and recorded under:
	// host:port, or HostKeyAlias:port.
	keyName  string
	hostKeys *hostKeyStore
}

type identityFile struct {
	path     string
	explicit bool
}

func (h sshHop) addr() string { return net.JoinHostPort(h.host, strconv.Itoa(h.port)) }

// resolve fills the empty fields of cfg from ssh_config and defaults, as
// ssh does with the plan's fields in the place of its command line. It
// returns the hop and the ProxyJump spec still to be dialled, if any.
func (d *dialer) resolve(cfg SSHConfig) (sshHop, string, error) {
	alias, port := cfg.Address, cfg.Port
	if h, p, err := net.SplitHostPort(alias); err == nil {
		alias = h
		if port == 0 {
			if port, err = strconv.Atoi(p); err != nil {
				return sshHop{}, "", fmt.Errorf("address %q: bad port", cfg.Address)
			}
		}
	}
	// A bracketed IPv6 address without a port, as ProxyJump writes it.
	if strings.HasPrefix(alias, "[") && strings.HasSuffix(alias, "]") {
		alias = alias[1 : len(alias)-1]
	}
	if alias == "" {
		return sshHop{}, "", errors.New("no address")
	}
	o, err := sshconfig.Resolve(alias, d.sources, d.env, sshconfig.Overrides{
		User: cfg.User, Port: port, IdentityFiles: cfg.IdentityFiles, ProxyJump: cfg.Jump,
	})
	if err != nil {
		if d.cfg.SSHConfigFile != "none" {
			err = fmt.Errorf("%w (point --ssh-config elsewhere, or \"none\" to ignore it)", err)
		}
		return sshHop{}, "", err
	}
	h := sshHop{alias: alias, host: o.HostName, port: o.Port, user: o.User}
	for i, f := range o.IdentityFiles {
		p, err := o.ExpandPath(f)
		if err != nil {
			return sshHop{}, "", fmt.Errorf("ssh config: IdentityFile %s: %w", f, err)
		}
		// The plan's files come first in the list, as ssh's -i files do.
		explicit := i < len(cfg.IdentityFiles) && f == cfg.IdentityFiles[i]
		h.identityFiles = append(h.identityFiles, identityFile{path: p, explicit: explicit})
	}
	if h.proxyCommand, err = o.ProxyCommandLine(); err != nil {
		return sshHop{}, "", fmt.Errorf("ssh config: %w", err)
	}
	keyHost := h.host
	if o.HostKeyAlias != "" {
		keyHost = o.HostKeyAlias
	}
	h.keyName = net.JoinHostPort(keyHost, strconv.Itoa(h.port))
	if h.hostKeys, err = d.hostKeyStore(o); err != nil {
		return sshHop{}, "", err
	}
	return h, o.ProxyJump, nil
}

// hostKeyStore builds the known_hosts view ssh would use for o: its user
// files (or --known-hosts), its global files, whether new keys are
// accepted and whether they are written hashed.
func (d *dialer) hostKeyStore(o *sshconfig.Options) (*hostKeyStore, error) {
	s := &hostKeyStore{
		userFiles: o.UserKnownHostsFiles,
		hash:      o.HashKnownHosts,
		// StrictHostKeyChecking accept-new (or no) accepts a new key as
		// --accept-new-host-keys does; a changed key is refused whatever
		// ssh_config says.
		acceptNew: d.cfg.AcceptNewHostKeys || o.StrictHostKeyChecking == "accept-new" || o.StrictHostKeyChecking == "no",
	}
	if d.cfg.KnownHostsFile != "" {
		s.userFiles = []string{d.cfg.KnownHostsFile}
	}
	for _, f := range o.GlobalKnownHostsFiles {
		p, err := o.ExpandPath(f)
		if err != nil {
			return nil, fmt.Errorf("ssh config: GlobalKnownHostsFile %s: %w", f, err)
		}
		s.globalFiles = append(s.globalFiles, p)
	}
	return s, nil
}

// maxJumpDepth stops a ProxyJump loop in ssh_config.
const maxJumpDepth = 8

// chain resolves cfg into the hops to dial, outermost jump host first and
// the target last. The first jump host's own ProxyJump is followed; later
// hops of a comma-separated list go through the previous one, as ssh -J does.
func (d *dialer) chain(cfg SSHConfig, depth int) ([]sshHop, error) {
	if depth > maxJumpDepth {
		return nil, fmt.Errorf("ProxyJump chain deeper than %d hops (a loop in ssh config?)", maxJumpDepth)
	}
	h, jump, err := d.resolve(cfg)
	if err != nil {
		return nil, err
	}
	if jump == "" {
		return []sshHop{h}, nil
	}
	var hops []sshHop
	for i, spec := range strings.Split(jump, ",") {
		jc, err := jumpConfig(cfg, strings.TrimSpace(spec))
		if err != nil {
			return nil, err
		}
		if i > 0 {
			jc.Jump = "none"
		}
		more, err := d.chain(jc, depth+1)
		if err != nil {
			return nil, fmt.Errorf("jump host %s: %w", spec, err)
		}
		hops = append(hops, more...)
	}
	return append(hops, h), nil
}

// jumpConfig turns a "[user@]host[:port]" spec into the config for that
// hop. It shares the target's host key and authentication settings, and
// its identity files (as ssh -i applies to every hop) after the hop's own.
func jumpConfig(target SSHConfig, spec string) (SSHConfig, error) {
	c := target
	for hop, own := range target.JumpIdentityFiles {
		if sameHop(hop, spec) {
			c.IdentityFiles = append(append([]string(nil), own...), target.IdentityFiles...)
		}
	}
	spec = strings.TrimPrefix(spec, "ssh://")
	c.Name, c.User, c.Port, c.Jump = spec, "", 0, ""
	if at := strings.LastIndexByte(spec, '@'); at >= 0 {
		c.User, spec = spec[:at], spec[at+1:]
	}
	c.Address = spec
	if spec == "" {
		return SSHConfig{}, fmt.Errorf("bad ProxyJump host %q", spec)
	}
	return c, nil
}

// sameHop compares two jump specs by user, host and port, however each
// writes them ("root@[10.0.0.5]:22" and "root@10.0.0.5").
func sameHop(a, b string) bool {
	norm := func(s string) string {
		s = strings.TrimSuffix(strings.TrimPrefix(s, "ssh://"), "/")
		user, host := "", s
		if at := strings.LastIndexByte(s, '@'); at >= 0 {
			user, host = s[:at], s[at+1:]
		}
		port := "22"
		if h, p, err := net.SplitHostPort(host); err == nil {
			host, port = h, p
		}
		return user + "@" + strings.Trim(host, "[]") + ":" + port
	}
	return norm(a) == norm(b)
}
