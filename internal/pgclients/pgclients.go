// Package pgclients tells who is connected to a PostgreSQL database: for
// each client connection, the process on the server's host that holds it
// and the service (systemd unit) that process belongs to.
//
// A migration must know, before it changes anything, that every client of
// the database it moves is something it will stop: a client it does not
// stop keeps writing to the old database after the data was taken (the
// writes are lost) or makes the cut-over refuse in the middle of the
// downtime. PostgreSQL knows only the other end's address; the host
// knows the rest:
//
//   - pg_stat_activity gives each client backend's pid and the client's
//     address and port (port -1 for the local socket) (ListSQL);
//   - `ss -Hntxp` gives every TCP and Unix socket of the host with the
//     processes holding it: a TCP client on this host is the socket whose
//     local end is the client's address and port; a local-socket client is
//     the peer of the socket the backend holds;
//   - the process or one of its ancestors is the main pid of a unit
//     (systemctl show -p MainPID), and failing that /proc/PID/cgroup names
//     the unit under systemd (…/NAME.service).
//
// A client from another host cannot be followed further: its address is
// all there is.
package pgclients

// Longer than 400 lines on purpose: the socket and process tables it parses
// are read together to tie a connection to its service.

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ListSQL lists the database's client connections other than the session
// running it, one row each: backend pid, role, application_name, client
// address ("" for the local socket), client port (-1 for the local
// socket). Background workers, walsenders (replication, including a
// migration's own subscription) and autovacuum are not clients.
const ListSQL = `SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), coalesce(host(client_addr), ''), coalesce(client_port, -1)
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
ORDER BY pid;
`

// Conn is one client connection as the server sees it.
type Conn struct {
	BackendPID  int
	User        string
	Application string
	Addr        string // client address; "" over the local socket
	Port        int    // client port; -1 over the local socket
}

// Local reports whether the connection came over the local socket.
func (c Conn) Local() bool { return c.Addr == "" }

// ParseConns reads ListSQL's rows.
func ParseConns(rows [][]string) ([]Conn, error) {
	conns := make([]Conn, 0, len(rows))
	for _, r := range rows {
		if len(r) != 5 {
			return nil, fmt.Errorf("pg_stat_activity: unexpected row %q", r)
		}
		pid, err1 := strconv.Atoi(r[0])
		port, err2 := strconv.Atoi(r[4])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("pg_stat_activity: unexpected row %q", r)
		}
		conns = append(conns, Conn{BackendPID: pid, User: r[1], Application: r[2], Addr: r[3], Port: port})
	}
	return conns, nil
}

// Client is a connection and what holds it.
type Client struct {
	Conn
	// PID is the client process on the server's host; 0 when none was
	// found there (a client on another host, or one that just left).
	PID int
	// Process is its name (/proc/PID/status Name).
	Process string
	// UID is its real user id; -1 when unknown.
	UID int
	// Unit is the service it belongs to, without ".service"; "" for none
	// (a login session, a cron job, a process started by hand).
	Unit string
	// Gone: the client closed its end, and the backend goes on with
	// the statement it was running (it notices only when it answers).
	Gone bool
}

// String names the client for a person: what it is, where it connects
// from and, when known, its service.
func (c Client) String() string {
	var b strings.Builder
	switch {
	case c.PID != 0:
		fmt.Fprintf(&b, "%s (pid %d", c.Process, c.PID)
		if c.UID >= 0 {
			fmt.Fprintf(&b, ", uid %d", c.UID)
		}
		if c.Local() {
			b.WriteString(", over the local socket")
		}
		b.WriteString(")")
		if c.Unit != "" {
			fmt.Fprintf(&b, " of service %s", c.Unit)
		} else {
			b.WriteString(" of no service")
		}
	case c.Gone:
		fmt.Fprintf(&b, "a session whose client has gone, still running its statement (backend pid %d)", c.BackendPID)
	case c.Local():
		fmt.Fprintf(&b, "a process over the local socket (backend pid %d) that ss could not show", c.BackendPID)
	default:
		fmt.Fprintf(&b, "a client at %s port %d, not a process of this host", c.Addr, c.Port)
	}
	var about []string
	if c.User != "" {
		about = append(about, "role "+c.User)
	}
	if c.Application != "" {
		about = append(about, fmt.Sprintf("application %q", c.Application))
	}
	if len(about) > 0 {
		b.WriteString(" [" + strings.Join(about, ", ") + "]")
	}
	return b.String()
}

// Run runs a POSIX shell script on the database server's host, as root
// (ss shows other users' processes to root only), and returns its
// standard output. It must change nothing.
type Run func(ctx context.Context, script string) (string, error)

// SocketsScript prints the host's TCP and Unix sockets with their
// processes. Without ss (iproute2) it fails saying so.
const SocketsScript = `command -v ss >/dev/null 2>&1 || { echo "ss (iproute2) is not installed: cannot tell which process holds each connection" >&2; exit 127; }
exec ss -Hntxp
`

// Identify finds each connection's process and service on the host run
// reaches. services are the units whose main pids are looked up for
// processes that no systemd cgroup names (see the package comment).
func Identify(ctx context.Context, run Run, conns []Conn, services []string) ([]Client, error) {
	clients := make([]Client, len(conns))
	for i, c := range conns {
		clients[i] = Client{Conn: c, UID: -1}
	}
	if len(conns) == 0 {
		return clients, nil
	}
	out, err := run(ctx, SocketsScript)
	if err != nil {
		return nil, fmt.Errorf("listing the host's sockets: %w", err)
	}
	socks := parseSockets(out)
	var pids []int
	for i := range clients {
		clients[i].PID, clients[i].Gone = socks.clientPID(clients[i].Conn)
		if clients[i].PID != 0 {
			pids = append(pids, clients[i].PID)
		}
	}
	if len(pids) == 0 {
		return clients, nil
	}
	out, err = run(ctx, processScript(pids, services))
	if err != nil {
		return nil, fmt.Errorf("reading the clients' processes: %w", err)
	}
	procs, mains := parseProcesses(out)
	for i := range clients {
		c := &clients[i]
		if c.PID == 0 {
			continue
		}
		p, ok := procs[c.PID]
		if !ok { // gone meanwhile: it holds nothing any more
			c.PID = 0
			continue
		}
		c.Process, c.UID = p.name, p.uid
		c.Unit = unitOf(c.PID, procs, mains)
	}
	return clients, nil
}

// socket is one line of ss -Hntxp.
type socket struct {
	netid      string // tcp, u_str ...
	state      string // ESTAB, CLOSE-WAIT ...
	local      string // tcp: address:port; unix: inode
	peer       string // tcp: address:port; unix: the peer's inode
	pids       []int
	localAddr  netip.AddrPort // tcp only
	localValid bool
}

// sockets is what ss showed.
type sockets []socket

var ssUsersRE = regexp.MustCompile(`,pid=(\d+),fd=\d+\)`)

// parseSockets reads ss -Hntxp output: Netid State Recv-Q Send-Q, then
// Local and Peer as address:port (tcp) or path and inode each (unix, the
// path "*" when there is none), then the processes.
func parseSockets(out string) sockets {
	var socks sockets
	for _, line := range strings.Split(out, "\n") {
		users := ""
		if i := strings.Index(line, "users:("); i >= 0 {
			line, users = line[:i], line[i:]
		}
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		s := socket{netid: f[0], state: f[1]}
		switch {
		case strings.HasPrefix(f[0], "tcp"):
			s.local, s.peer = f[4], f[5]
			if ap, err := netip.ParseAddrPort(unzone(f[4])); err == nil {
				s.localAddr, s.localValid = ap, true
			}
		case strings.HasPrefix(f[0], "u_") && len(f) >= 8:
			// The path may be missing on a line (no field at all in
			// some versions): the inodes are the last two numbers.
			s.local, s.peer = f[len(f)-3], f[len(f)-1]
		default:
			continue
		}
		for _, m := range ssUsersRE.FindAllStringSubmatch(users, -1) {
			pid, _ := strconv.Atoi(m[1])
			s.pids = append(s.pids, pid)
		}
		socks = append(socks, s)
	}
	return socks
}

// unzone drops an IPv6 zone (ss prints [fe80::1%eth0]:5432).
func unzone(s string) string {
	if i := strings.IndexByte(s, '%'); i >= 0 {
		if j := strings.IndexByte(s[i:], ']'); j >= 0 {
			return s[:i] + s[i+j:]
		}
	}
	return s
}

// clientPID is the process holding the client end of c on this host, 0
// when there is none; gone reports that the backend's end shows its
// client closed the connection (no peer, or CLOSE-WAIT). Several
// processes may share a socket (a fork): the lowest pid, the parent as a
// rule, stands for them.
func (socks sockets) clientPID(c Conn) (pid int, gone bool) {
	if c.Local() {
		peer := ""
		for _, s := range socks {
			if strings.HasPrefix(s.netid, "u_") && contains(s.pids, c.BackendPID) {
				peer = s.peer
				break
			}
		}
		if peer == "0" {
			return 0, true
		}
		if peer == "" || peer == "*" {
			return 0, false
		}
		for _, s := range socks {
			if strings.HasPrefix(s.netid, "u_") && s.local == peer {
				return lowest(s.pids, c.BackendPID), false
			}
		}
		return 0, false
	}
	addr, err := netip.ParseAddr(c.Addr)
	if err != nil {
		return 0, false
	}
	addr = addr.Unmap()
	for _, s := range socks {
		if !strings.HasPrefix(s.netid, "tcp") || !contains(s.pids, c.BackendPID) || s.state != "CLOSE-WAIT" {
			continue
		}
		if ap, err := netip.ParseAddrPort(unzone(s.peer)); err == nil && int(ap.Port()) == c.Port && ap.Addr().Unmap() == addr {
			return 0, true
		}
	}
	for _, s := range socks {
		if !s.localValid || int(s.localAddr.Port()) != c.Port || s.localAddr.Addr().Unmap() != addr {
			continue
		}
		if contains(s.pids, c.BackendPID) { // the server's own end (a client port equal to the server's)
			continue
		}
		return lowest(s.pids, c.BackendPID), false
	}
	return 0, false
}

func contains(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

func lowest(pids []int, except int) int {
	best := 0
	for _, p := range pids {
		if p != except && (best == 0 || p < best) {
			best = p
		}
	}
	return best
}

// processScript prints, for each pid and each of its ancestors, a
// "@proc PID" line, the Name, PPid and Uid lines of its status and its
// cgroup lines; then for each service "@unit NAME" and its main pid.
func processScript(pids []int, services []string) string {
	var b strings.Builder
	b.WriteString("for p in")
	for _, p := range pids {
		fmt.Fprintf(&b, " %d", p)
	}
	b.WriteString(`; do
  n=0
  while [ "$p" -gt 1 ] 2>/dev/null && [ $n -lt 64 ] && s=$(cat /proc/$p/status 2>/dev/null); do
    echo "@proc $p"
    printf '%s\n' "$s" | grep -E '^(Name|PPid|Uid):'
    sed 's/^/cgroup /' /proc/$p/cgroup 2>/dev/null
    p=$(printf '%s\n' "$s" | sed -n 's/^PPid:[[:space:]]*//p')
    n=$((n + 1))
  done
done
`)
	sorted := append([]string(nil), services...)
	sort.Strings(sorted)
	for _, s := range sorted {
		// Unit names are checked by the caller; quoted all the same.
		fmt.Fprintf(&b, "echo '@unit %s'; systemctl show -p MainPID --value '%s.service' 2>/dev/null || true\n", s, s)
	}
	return b.String()
}

type process struct {
	name    string
	ppid    int
	uid     int
	cgroups []string // paths
}

// parseProcesses reads processScript's output: the processes by pid, and
// the main pid of each service (0 when it runs no process).
func parseProcesses(out string) (map[int]*process, map[int]string) {
	procs := map[int]*process{}
	mains := map[int]string{}
	var cur *process
	unit := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "@proc "):
			pid, _ := strconv.Atoi(strings.TrimPrefix(line, "@proc "))
			cur, unit = &process{uid: -1}, ""
			procs[pid] = cur
		case strings.HasPrefix(line, "@unit "):
			cur, unit = nil, strings.TrimPrefix(line, "@unit ")
		case unit != "":
			if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && pid > 0 {
				mains[pid] = unit
			}
		case cur == nil:
		case strings.HasPrefix(line, "Name:"):
			cur.name = strings.TrimSpace(strings.TrimPrefix(line, "Name:"))
		case strings.HasPrefix(line, "PPid:"):
			cur.ppid, _ = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "PPid:")))
		case strings.HasPrefix(line, "Uid:"):
			if f := strings.Fields(strings.TrimPrefix(line, "Uid:")); len(f) > 0 {
				cur.uid, _ = strconv.Atoi(f[0])
			}
		case strings.HasPrefix(line, "cgroup "):
			// hierarchy-ID:controllers:path
			if parts := strings.SplitN(strings.TrimPrefix(line, "cgroup "), ":", 3); len(parts) == 3 {
				cur.cgroups = append(cur.cgroups, parts[2])
			}
		}
	}
	return procs, mains
}

// unitOf is the service pid belongs to: the unit whose main pid is pid or
// one of its ancestors, else the .service its systemd cgroup names. The
// main pids come first: they name only the services asked about, while a
// cgroup path can be inherited from whatever started the host's processes
// (a CI job's own unit, a container's), which would name every process.
func unitOf(pid int, procs map[int]*process, mains map[int]string) string {
	for p, n := pid, 0; p > 1 && n < 64; n++ {
		if u, ok := mains[p]; ok {
			return u
		}
		pr := procs[p]
		if pr == nil {
			break
		}
		p = pr.ppid
	}
	if p := procs[pid]; p != nil {
		for _, cg := range p.cgroups {
			if u := serviceInCgroup(cg); u != "" {
				return u
			}
		}
	}
	return ""
}

// serviceInCgroup is the service a systemd cgroup path names
// (/system.slice/ovirt-engine.service, or a sub-cgroup of it), "" for
// none (/, /user.slice/…/session-3.scope).
func serviceInCgroup(path string) string {
	if !strings.Contains(path, "/system.slice/") {
		return ""
	}
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if strings.HasSuffix(parts[i], ".service") {
			name := strings.TrimSuffix(parts[i], ".service")
			// user@UID.service is a user's own manager, not a system service.
			if strings.HasPrefix(name, "user@") {
				return ""
			}
			return name
		}
	}
	return ""
}
