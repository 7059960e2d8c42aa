package executors

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
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
}

type identityFile struct {
	path     string
	explicit bool
}

func (h sshHop) addr() string { return net.JoinHostPort(h.host, strconv.Itoa(h.port)) }

// loadSSHConfig parses the ssh_config file named by cfg, or returns nil when
// it is disabled or (for the default file) absent.
//
// kevinburke/ssh_config v1.6.0 reads Include, "Host" blocks, "Match all" and
// "Match host" (matched against the alias, not the resolved HostName as
// OpenSSH does); every other Match criterion, "Match exec" included, is a
// parse error rather than being misread, and is reported as such.
func loadSSHConfig(file string) (*ssh_config.Config, error) {
	if file == "none" {
		return nil, nil
	}
	explicit := file != ""
	if !explicit {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil
		}
		file = filepath.Join(home, ".ssh", "config")
	}
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	defer f.Close()
	c, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w (point --ssh-config elsewhere, or \"none\" to ignore it)", file, err)
	}
	return c, nil
}

// resolve fills the empty fields of cfg from ssh_config and defaults. It
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
	if alias == "" {
		return sshHop{}, "", errors.New("no address")
	}
	get := func(key string) string {
		if d.sshConfig == nil {
			return ""
		}
		v, _ := d.sshConfig.Get(alias, key)
		return v
	}
	h := sshHop{alias: alias, host: alias, port: port, user: cfg.User}
	if hn := get("HostName"); hn != "" {
		h.host = strings.ReplaceAll(hn, "%h", alias)
	}
	if h.user == "" {
		h.user = get("User")
	}
	if h.user == "" {
		h.user = d.localUser
	}
	if h.port == 0 {
		if p := get("Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				return sshHop{}, "", fmt.Errorf("ssh config: Port %q for %s", p, alias)
			}
			h.port = n
		}
	}
	if h.port == 0 {
		h.port = 22
	}
	for _, f := range cfg.IdentityFiles {
		h.identityFiles = append(h.identityFiles, identityFile{path: d.expand(f, h), explicit: true})
	}
	if len(cfg.IdentityFiles) == 0 && d.sshConfig != nil {
		files, _ := d.sshConfig.GetAll(alias, "IdentityFile")
		for _, f := range files {
			h.identityFiles = append(h.identityFiles, identityFile{path: d.expand(f, h)})
		}
	}
	if len(h.identityFiles) == 0 && d.home != "" {
		// OpenSSH's default identities.
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			h.identityFiles = append(h.identityFiles, identityFile{path: filepath.Join(d.home, ".ssh", n)})
		}
	}
	jump := cfg.Jump
	if jump == "" {
		jump = get("ProxyJump")
	}
	if jump == "none" {
		jump = ""
	}
	return h, jump, nil
}

// expand applies ssh_config's ~ and %d %u %h %r %% to a file name.
func (d *dialer) expand(p string, h sshHop) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = d.home + p[1:]
	}
	if !strings.Contains(p, "%") {
		return p
	}
	return strings.NewReplacer("%%", "%", "%d", d.home, "%u", d.localUser, "%h", h.host, "%r", h.user).Replace(p)
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
// hop. It shares the target's host key and authentication settings (and its
// identity files, as ssh -i applies to every hop).
func jumpConfig(target SSHConfig, spec string) (SSHConfig, error) {
	spec = strings.TrimPrefix(spec, "ssh://")
	c := target
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

func currentUser() (name, home string) {
	if u, err := user.Current(); err == nil {
		name, home = u.Username, u.HomeDir
	}
	if h, err := os.UserHomeDir(); err == nil {
		home = h
	}
	return name, home
}
