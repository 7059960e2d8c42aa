package sshconfig

// Longer than 400 lines on purpose: it is ssh_config(5)'s reading rules
// (first value wins, Match/Host blocks, Include, tokens, per-keyword checks),
// which depend on each other line by line.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxIncludeDepth is ssh's READCONF_MAX_DEPTH.
const maxIncludeDepth = 16

// resolver holds the values read so far. As in ssh, the first value a
// keyword obtains is kept; later lines only fill what is still unset.
type resolver struct {
	env     Env
	hostArg string // the name asked for
	host    string // what Host lines match: hostArg, then in the final pass the resolved name
	final   bool   // the second pass, for Match final / canonical
	// wantFinal records a Match final (or canonical) seen in the first pass.
	wantFinal bool

	hostName         string
	hostNameSet      bool
	user             string
	port             int
	identityFiles    []string
	idFromUser       []bool // parallel to identityFiles: named in a user file or the plan
	identitiesOnly   bool
	certificateFiles []string
	proxyCommand     string // "" unset, "none" after a ProxyJump or a "ProxyCommand none"
	jumpHost         string
	jumpUser         string
	jumpPort         int
	jumpExtra        string
	userKnownHosts   []string
	globalKnownHosts []string
	hashKnownHosts   bool
	strict           string
	hostKeyAlias     string
	connectTimeout   int
	canonicalize     string
	ignoreUnknown    string
	tag              string

	// set records, per keyword, where its value came from; a keyword in
	// it is not set again.
	set map[string]string
}

func (r *resolver) applyOverrides(o Overrides) error {
	if o.User != "" {
		r.user, r.set["user"] = o.User, "(plan)"
	}
	if o.Port != 0 {
		r.port, r.set["port"] = o.Port, "(plan)"
	}
	for _, f := range o.IdentityFiles {
		r.addIdentity(f, true)
	}
	if o.ProxyJump != "" {
		if err := r.parseJump(o.ProxyJump, true); err != nil {
			return fmt.Errorf("jump %q: %w", o.ProxyJump, err)
		}
		r.set["proxyjump"] = "(plan)"
	}
	return nil
}

// readFile reads one file. found is false when it does not exist.
// neverMatch reads an Include met in an inactive block: checked, applied
// nowhere.
func (r *resolver) readFile(path string, userFile, checkPerm, neverMatch bool, active *bool, depth int) (found bool, err error) {
	if depth > maxIncludeDepth {
		return false, &Error{File: path, Msg: "too many recursive includes"}
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, &Error{File: path, Msg: err.Error()}
	}
	defer f.Close()
	if checkPerm {
		if err := checkOwner(f); err != nil {
			return true, &Error{File: path, Msg: err.Error()}
		}
	}
	br := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if line != "" {
			if perr := r.processLine(line, path, n, userFile, neverMatch, active, depth); perr != nil {
				return true, perr
			}
		}
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return true, &Error{File: path, Msg: err.Error()}
		}
	}
}

// checkOwner refuses a file another user owns or others may write, as ssh
// does: such a file could point ssh at a host of someone else's choosing.
func checkOwner(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if (st.Uid != 0 && int(st.Uid) != os.Getuid()) || fi.Mode().Perm()&0o022 != 0 {
		return errors.New("bad owner or permissions (ssh refuses it too: it must be yours or root's and writable by nobody else)")
	}
	return nil
}

func (r *resolver) processLine(line, file string, n int, userFile, neverMatch bool, active *bool, depth int) error {
	keyword, rest, ok := splitKeyword(line)
	if !ok {
		return nil
	}
	bad := func(format string, a ...any) error {
		return &Error{File: file, Line: n, Msg: fmt.Sprintf(format, a...)}
	}
	if rest == "" {
		return bad("no argument after keyword %q", keyword)
	}
	if !knownKeywords[keyword] {
		if r.ignoreUnknown != "" && matchList(keyword, r.ignoreUnknown, true) == 1 {
			return nil
		}
		return bad("bad configuration option: %s", keyword)
	}
	switch keyword {
	case "match":
		m, err := r.match(rest, file, n)
		if err != nil {
			return err
		}
		*active = m && !neverMatch
		return nil
	case "proxycommand":
		cmd := strings.TrimLeft(rest, whitespace+"=")
		if *active && r.proxyCommand == "" && r.jumpHost == "" {
			r.proxyCommand, r.set[keyword] = cmd, where(file, n)
		}
		return nil
	case "proxyjump":
		spec := strings.TrimLeft(rest, whitespace+"=")
		apply := *active && r.proxyCommand == "" && r.jumpHost == ""
		if err := r.parseJump(spec, apply); err != nil {
			return bad("invalid ProxyJump %q", spec)
		}
		if apply {
			r.set[keyword] = where(file, n)
		}
		return nil
	}
	args, err := splitArgs(rest)
	if err != nil {
		return bad("%v", err)
	}
	for _, a := range args {
		if a == "" {
			return bad("keyword %s: empty argument", keyword)
		}
	}
	switch keyword {
	case "host":
		*active = false
		if neverMatch {
			return nil
		}
		for _, a := range args {
			negated := strings.HasPrefix(a, "!")
			if negated {
				a = a[1:]
			}
			if matchPattern(r.host, a) {
				if negated {
					*active = false
					return nil
				}
				*active = true
			}
		}
		return nil
	case "include":
		return r.include(args, file, n, userFile, neverMatch || !*active, active, depth)
	case "identityfile", "identityfile2", "certificatefile":
		if len(args) > 1 {
			return bad("keyword %s: extra arguments at end of line", keyword)
		}
		if *active {
			if keyword == "certificatefile" {
				r.certificateFiles = appendNew(r.certificateFiles, args[0])
			} else {
				r.addIdentity(args[0], userFile)
			}
			r.set[keyword] = where(file, n)
		}
		return nil
	case "userknownhostsfile", "globalknownhostsfile":
		for i, a := range args {
			if strings.EqualFold(a, "none") && (i > 0 || len(args) > 1) {
				return bad("keyword %s: \"none\" must appear alone", keyword)
			}
		}
		if *active {
			dst := &r.userKnownHosts
			if keyword == "globalknownhostsfile" {
				dst = &r.globalKnownHosts
			}
			if *dst == nil {
				*dst = args
				r.set[keyword] = where(file, n)
			}
		}
		return nil
	}
	// Every other keyword read here takes one argument; the ones migrun
	// does not act on are only checked for that.
	if len(args) > 1 && !multiArg[keyword] {
		return bad("keyword %s: extra arguments at end of line", keyword)
	}
	if !*active || r.set[keyword] != "" {
		return r.check(keyword, args[0], bad)
	}
	if err := r.setValue(keyword, args[0], bad); err != nil {
		return err
	}
	if r.set[keyword] == "?" {
		r.set[keyword] = where(file, n)
	}
	return nil
}

// multiArg are keywords migrun ignores that take several arguments; their
// arguments are not checked.
var multiArg = setOf("canonicaldomains", "canonicalizepermittedcnames", "channeltimeout",
	"localforward", "remoteforward", "dynamicforward", "sendenv", "setenv", "permitremoteopen",
	"ipqos", "rekeylimit", "logverbose", "localcommand", "remotecommand", "knownhostscommand",
	"obscurekeystroketiming", "refuseconnection", "versionaddendum", "warnweakcrypto")

func where(file string, n int) string { return file + " line " + strconv.Itoa(n) }

// check validates a value that is not applied (already set, or in an
// inactive block): ssh refuses a bad value wherever it is.
func (r *resolver) check(keyword, v string, bad func(string, ...any) error) error {
	saved := *r
	saved.set = map[string]string{}
	return saved.setValue(keyword, v, bad)
}

// setValue applies a one-argument keyword, marking it set in r.set with a
// placeholder the caller replaces by the line.
func (r *resolver) setValue(keyword, v string, bad func(string, ...any) error) error {
	mark := func() { r.set[keyword] = "?" }
	switch keyword {
	case "hostname":
		r.hostName, r.hostNameSet = v, true
		mark()
	case "user":
		r.user = v
		mark()
	case "port":
		p, err := strconv.Atoi(v)
		if err != nil || p <= 0 || p > 65535 {
			return bad("bad port %q", v)
		}
		r.port = p
		mark()
	case "hostkeyalias":
		r.hostKeyAlias = v
		mark()
	case "ignoreunknown":
		r.ignoreUnknown = v
		mark()
	case "tag":
		r.tag = v
		mark()
	case "identitiesonly", "hashknownhosts":
		b, ok := flag(v)
		if !ok {
			return bad("%s: unsupported value %q (yes or no)", keyword, v)
		}
		if keyword == "identitiesonly" {
			r.identitiesOnly = b
		} else {
			r.hashKnownHosts = b
		}
		mark()
	case "stricthostkeychecking":
		s, ok := map[string]string{"yes": "yes", "true": "yes", "no": "no", "false": "no", "off": "no", "ask": "ask", "accept-new": "accept-new"}[strings.ToLower(v)]
		if !ok {
			return bad("StrictHostKeyChecking: unsupported value %q", v)
		}
		r.strict = s
		mark()
	case "canonicalizehostname":
		s, ok := map[string]string{"yes": "yes", "true": "yes", "no": "no", "false": "no", "always": "always"}[strings.ToLower(v)]
		if !ok {
			return bad("CanonicalizeHostname: unsupported value %q", v)
		}
		r.canonicalize = s
		mark()
	case "connecttimeout":
		if v == "none" {
			mark()
			return nil
		}
		secs, err := parseTime(v)
		if err != nil {
			return bad("ConnectTimeout: %v", err)
		}
		r.connectTimeout = secs
		mark()
	}
	return nil
}

func flag(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true, true
	case "no", "false":
		return false, true
	}
	return false, false
}

// parseTime reads ssh's time format: a number of seconds, or numbers each
// followed by s, m, h, d or w ("1h30m").
func parseTime(v string) (int, error) {
	total, num := 0, ""
	unit := map[byte]int{'s': 1, 'S': 1, 'm': 60, 'M': 60, 'h': 3600, 'H': 3600, 'd': 86400, 'D': 86400, 'w': 604800, 'W': 604800}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= '0' && c <= '9' {
			num += string(c)
			continue
		}
		m, ok := unit[c]
		if !ok || num == "" {
			return 0, fmt.Errorf("invalid time value %q", v)
		}
		n, _ := strconv.Atoi(num)
		total, num = total+n*m, ""
	}
	if num != "" {
		n, err := strconv.Atoi(num)
		if err != nil {
			return 0, fmt.Errorf("invalid time value %q", v)
		}
		total += n
	}
	if v == "" {
		return 0, fmt.Errorf("invalid time value %q", v)
	}
	return total, nil
}

// addIdentity adds an IdentityFile unless the same path was already added
// from the same kind of source, as ssh's add_identity_file does.
func (r *resolver) addIdentity(p string, fromUser bool) {
	for i, have := range r.identityFiles {
		if have == p && r.idFromUser[i] == fromUser {
			return
		}
	}
	r.identityFiles = append(r.identityFiles, p)
	r.idFromUser = append(r.idFromUser, fromUser)
}

func appendNew(list []string, v string) []string {
	for _, have := range list {
		if have == v {
			return list
		}
	}
	return append(list, v)
}

// include reads the files an Include names. Relative names are under
// ~/.ssh for a user file and /etc/ssh otherwise; each is a glob. A file
// included from an inactive block is read (and so checked) but applies
// nothing, and no Host or Match inside an included file changes whether
// the lines after the Include apply.
func (r *resolver) include(args []string, file string, n int, userFile, neverMatch bool, active *bool, depth int) error {
	for _, a := range args {
		if strings.HasPrefix(a, "~") && !userFile {
			return &Error{File: file, Line: n, Msg: "bad include path " + a + " (~ only in a user's file)"}
		}
		p := a
		if !filepath.IsAbs(p) && !strings.HasPrefix(p, "~") {
			if userFile {
				p = "~/.ssh/" + p
			} else {
				p = "/etc/ssh/" + p
			}
		}
		p, err := tildeExpand(p, r.env)
		if err != nil {
			return &Error{File: file, Line: n, Msg: "Include: " + err.Error()}
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			return &Error{File: file, Line: n, Msg: fmt.Sprintf("Include %s: %v", a, err)}
		}
		for _, m := range matches {
			saved := *active
			if _, err := r.readFile(m, userFile, true, neverMatch, active, depth+1); err != nil {
				return err
			}
			*active = saved
		}
	}
	return nil
}
