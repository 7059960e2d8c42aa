package plan

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Detection is one entry of the plan's detect: section: a yes/no fact
// about a host, found read-only when a run starts (what the Manager has:
// a DWH database, a hosted engine), and usable in `when:` as a var is.
//
// A run finds its detections once, before its first step, and keeps them
// in its journal: a resumed run goes on with the answers its first apply
// had, although its own steps may have changed what a probe would find
// now (the database the probe looked for moved away).
type Detection struct {
	Name        string
	Host        string
	Description string
	// Exactly one probe is set.
	File       string            // true when this path exists on Host
	Command    string            // a read-only shell script: exit 0 true, exit 1 false, anything else an error
	PgDatabase *DetectPgDatabase // true when the host's PostgreSQL has this database
	Line       int
	Column     int
}

// DetectPgDatabase is the pg_database probe: the PostgreSQL server on
// the detection's host, reached over its local socket as OSUser.
type DetectPgDatabase struct {
	Name   string
	Port   int    // 0: 5432
	OSUser string // "": postgres
}

// Probe names the detection's probe for people: what it looks for.
func (d Detection) Probe() string {
	switch {
	case d.File != "":
		return "file " + d.File + " exists on " + d.Host
	case d.PgDatabase != nil:
		port := d.PgDatabase.Port
		if port == 0 {
			port = 5432
		}
		return fmt.Sprintf("database %s exists in the PostgreSQL on %s, port %d", d.PgDatabase.Name, d.Host, port)
	default:
		return "command on " + d.Host + " succeeds"
	}
}

// osUserRE: a POSIX login name, as it reaches a become.
var osUserRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]*[$]?$`)

var detectKeys = []string{"host", "description", "file", "command", "pg_database"}

// detections decodes the detect section. It comes after hosts and vars:
// a probe runs on a plan host and may use vars (never secrets: a probe's
// script is shown and journaled as written).
func (l *loader) detections(n *yaml.Node) []Detection {
	var out []Detection
	for _, p := range l.section(n, "detect") {
		path := "detect." + p.key
		switch {
		case !varNameRE.MatchString(p.key):
			l.errorf(p.k, "", "%s: bad name; use letters, digits and _ (it is used in when: as a var is)", path)
			continue
		case hasVar(l.refs.vars, p.key):
			l.errorf(p.k, "", "%s: a var has this name; when: would not know which one it means", path)
			continue
		case l.refs.secrets[p.key]:
			l.errorf(p.k, "", "%s: a secret has this name", path)
			continue
		}
		out = append(out, l.detection(p, path))
	}
	return out
}

func hasVar(vars map[string]string, name string) bool {
	_, ok := vars[name]
	return ok
}

func (l *loader) detection(p pair, path string) Detection {
	d := Detection{Name: p.key, Line: p.k.Line, Column: p.k.Column}
	pairs, ok := l.mapping(p.v, path, "")
	if !ok {
		return d
	}
	var probes []string
	for _, q := range pairs {
		fpath := join(path, q.key)
		switch q.key {
		case "host":
			if h, ok := l.expand(q.v, fpath, "", l.refs.lookupVar); ok {
				if !l.knownHost(h) || h == workstation {
					l.errorf(deref(q.v), "", "%s: no host %q%s", fpath, h, didYouMean(h, l.hostNames()))
				}
				d.Host = h
			}
		case "description":
			d.Description, _ = l.plainText(q.v, fpath, "")
		case "file":
			probes = append(probes, q.key)
			if f, ok := l.expand(q.v, fpath, "", l.refs.lookupVar); ok {
				if !strings.HasPrefix(f, "/") {
					l.errorf(deref(q.v), "", "%s: %q is not an absolute path", fpath, f)
				}
				d.File = f
			}
		case "command":
			probes = append(probes, q.key)
			if c, ok := l.expand(q.v, fpath, "", l.refs.lookupVar); ok {
				if strings.TrimSpace(c) == "" {
					l.errorf(deref(q.v), "", "%s: empty", fpath)
				}
				d.Command = c
			}
		case "pg_database":
			probes = append(probes, q.key)
			d.PgDatabase = l.detectPgDatabase(q.v, fpath)
		default:
			l.unknownKey(q, path, "", detectKeys)
		}
	}
	if d.Host == "" && !hasKey(pairs, "host") {
		l.errorf(p.k, "", "%s: needs host: the plan host the probe runs on", path)
	}
	if len(probes) != 1 {
		l.errorf(p.k, "", "%s: give exactly one of file, command or pg_database (got %d)", path, len(probes))
	}
	return d
}

func (l *loader) detectPgDatabase(n *yaml.Node, path string) *DetectPgDatabase {
	pg := &DetectPgDatabase{}
	pairs, ok := l.mapping(n, path, "")
	if !ok {
		return pg
	}
	for _, q := range pairs {
		fpath := join(path, q.key)
		switch q.key {
		case "name":
			if s, ok := l.expand(q.v, fpath, "", l.refs.lookupVar); ok {
				if s == "" || strings.ContainsAny(s, "\x00\n") {
					l.errorf(deref(q.v), "", "%s: %q is not a database name", fpath, s)
				}
				pg.Name = s
			}
		case "port":
			if s, ok := l.expand(q.v, fpath, "", l.refs.lookupVar); ok {
				port, err := strconv.Atoi(s)
				if err != nil || port < 1 || port > 65535 {
					l.errorf(deref(q.v), "", "%s: %q is not a TCP port (1-65535)", fpath, s)
				}
				pg.Port = port
			}
		case "os_user":
			if s, ok := l.expand(q.v, fpath, "", l.refs.lookupVar); ok {
				if !osUserRE.MatchString(s) {
					l.errorf(deref(q.v), "", "%s: %q is not a user name", fpath, s)
				}
				pg.OSUser = s
			}
		default:
			l.unknownKey(q, path, "", []string{"name", "port", "os_user"})
		}
	}
	if pg.Name == "" && !hasKey(pairs, "name") {
		l.errorf(deref(n), "", "%s: needs name", path)
	}
	return pg
}

// DetectionNames lists the plan's detections by name.
func (p *Plan) DetectionNames() map[string]bool {
	names := make(map[string]bool, len(p.Detect))
	for _, d := range p.Detect {
		names[d.Name] = true
	}
	return names
}
