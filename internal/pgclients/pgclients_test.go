package pgclients

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// ssOut is ss -Hntxp on a Manager (iproute2 6.1's layout): the engine over
// IPv4 loopback, the DWH over IPv6 loopback, a psql over the local
// socket, a client from another host, and sockets of no interest.
const ssOut = `u_str ESTAB 0      0                                      * 1501311 * 1501312 users:(("psql",pid=2952,fd=3))
u_str ESTAB 0      0                                      * 1101    * 1100
u_str ESTAB 0      0      /var/run/postgresql/.s.PGSQL.5432 1501312 * 1501311 users:(("postgres",pid=2953,fd=7))
u_str ESTAB 0      0      /var/run/postgresql/.s.PGSQL.5432 1600002 * 1600001 users:(("postgres",pid=3100,fd=7))
tcp   ESTAB 0      0                              127.0.0.1:41234         127.0.0.1:5432  users:(("java",pid=1200,fd=80),("java",pid=1201,fd=80))
tcp   ESTAB 0      0                              127.0.0.1:5432          127.0.0.1:41234 users:(("postgres",pid=3001,fd=9))
tcp   ESTAB 0      0                                  [::1]:50000             [::1]:5432  users:(("ovirt-engine-dw",pid=1300,fd=5))
tcp   ESTAB 0      0                                  [::1]:5432              [::1]:50000 users:(("postgres",pid=3002,fd=9))
tcp   ESTAB 0      0                          192.0.2.10:5432        192.0.2.20:60000 users:(("postgres",pid=3003,fd=9))
tcp   CLOSE-WAIT 1   0                          192.0.2.10:5432        192.0.2.20:60001 users:(("postgres",pid=3004,fd=9))
u_str ESTAB 0      0      /var/run/postgresql/.s.PGSQL.5432 1557710           * 0     users:(("postgres",pid=3490,fd=8))
tcp   ESTAB 0      0                 [fe80::1%eth0]:22          [fe80::2%eth0]:50123 users:(("sshd",pid=900,fd=4))
`

func TestClientPID(t *testing.T) {
	socks := parseSockets(ssOut)
	tests := []struct {
		name string
		conn Conn
		want int
		gone bool
	}{
		{"tcp v4, lowest of the processes sharing it", Conn{BackendPID: 3001, Addr: "127.0.0.1", Port: 41234}, 1200, false},
		{"tcp v6", Conn{BackendPID: 3002, Addr: "::1", Port: 50000}, 1300, false},
		{"local socket", Conn{BackendPID: 2953, Port: -1}, 2952, false},
		{"local socket whose peer ss did not show", Conn{BackendPID: 3100, Port: -1}, 0, false},
		{"another host", Conn{BackendPID: 3003, Addr: "192.0.2.20", Port: 60000}, 0, false},
		{"a backend ss did not show", Conn{BackendPID: 4000, Port: -1}, 0, false},
		{"same port, other address", Conn{BackendPID: 3001, Addr: "127.0.0.2", Port: 41234}, 0, false},
		{"a killed psql's backend still in its statement", Conn{BackendPID: 3490, Port: -1}, 0, true},
		{"a remote client that closed", Conn{BackendPID: 3004, Addr: "192.0.2.20", Port: 60001}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, gone := socks.clientPID(tc.conn); got != tc.want || gone != tc.gone {
				t.Errorf("clientPID(%+v) = %d, gone %v; want %d, gone %v", tc.conn, got, gone, tc.want, tc.gone)
			}
		})
	}
}

func TestParseConns(t *testing.T) {
	conns, err := ParseConns([][]string{{"3001", "engine", "", "127.0.0.1", "41234"}, {"2953", "postgres", "psql", "", "-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 2 || conns[0].Local() || !conns[1].Local() || conns[1].Application != "psql" || conns[0].Port != 41234 {
		t.Errorf("ParseConns = %+v", conns)
	}
	for _, bad := range [][]string{{"x", "engine", "", "", "-1"}, {"1", "engine"}} {
		if _, err := ParseConns([][]string{bad}); err == nil {
			t.Errorf("ParseConns(%q): no error", bad)
		}
	}
}

func TestServiceInCgroup(t *testing.T) {
	for path, want := range map[string]string{
		"/system.slice/ovirt-engine.service":                  "ovirt-engine",
		"/system.slice/ovirt-engine.service/payload":          "ovirt-engine",
		"/system.slice/system-getty.slice/getty@tty1.service": "getty@tty1",
		"/user.slice/user-0.slice/session-3.scope":            "",
		"/user.slice/user-0.slice/user@0.service/app.slice":   "",
		"/": "",
	} {
		if got := serviceInCgroup(path); got != want {
			t.Errorf("serviceInCgroup(%q) = %q, want %q", path, got, want)
		}
	}
}

// host answers Identify's two scripts as a Manager would.
func host(procs string) Run {
	return func(_ context.Context, script string) (string, error) {
		if script == SocketsScript {
			return ssOut, nil
		}
		return procs, nil
	}
}

func TestIdentify(t *testing.T) {
	conns := []Conn{
		{BackendPID: 3001, User: "engine", Addr: "127.0.0.1", Port: 41234},
		{BackendPID: 3002, User: "ovirt_engine_history", Addr: "::1", Port: 50000},
		{BackendPID: 2953, User: "postgres", Application: "psql", Port: -1},
		{BackendPID: 3003, User: "engine", Addr: "192.0.2.20", Port: 60000},
	}
	// java 1200 is a child of ovirt-engine.py 1100 in the engine's
	// cgroup; the DWH's process is the main pid of its unit's child, in
	// the cgroup of whatever started the host (a CI job's unit, a test
	// host without systemd): the main pid wins; psql is a login's.
	procs := `@proc 1200
Name:	java
PPid:	1100
Uid:	108	108	108	108
cgroup 0::/system.slice/ovirt-engine.service
@proc 1100
Name:	ovirt-engine.py
PPid:	1
Uid:	108	108	108	108
cgroup 0::/system.slice/ovirt-engine.service
@proc 1300
Name:	ovirt-engine-dw
PPid:	1299
Uid:	0	0	0	0
cgroup 0::/system.slice/ci-runner.service
@proc 1299
Name:	bash
PPid:	1
Uid:	0	0	0	0
cgroup 0::/system.slice/ci-runner.service
@proc 2952
Name:	psql
PPid:	2000
Uid:	26	26	26	26
cgroup 1:name=systemd:/user.slice/user-0.slice/session-3.scope
@proc 2000
Name:	bash
PPid:	1
Uid:	0	0	0	0
cgroup 1:name=systemd:/user.slice/user-0.slice/session-3.scope
@unit ovirt-engine
1100
@unit ovirt-engine-dwhd
1299
@unit ovirt-engine-notifier
0
`
	clients, err := Identify(context.Background(), host(procs), conns, []string{"ovirt-engine", "ovirt-engine-dwhd", "ovirt-engine-notifier"})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		pid  int
		unit string
		text string
	}{
		{1200, "ovirt-engine", "java (pid 1200, uid 108) of service ovirt-engine [role engine]"},
		{1300, "ovirt-engine-dwhd", "ovirt-engine-dw (pid 1300, uid 0) of service ovirt-engine-dwhd [role ovirt_engine_history]"},
		{2952, "", `psql (pid 2952, uid 26, over the local socket) of no service [role postgres, application "psql"]`},
		{0, "", "a client at 192.0.2.20 port 60000, not a process of this host [role engine]"},
	}
	for i, w := range want {
		c := clients[i]
		if c.PID != w.pid || c.Unit != w.unit || c.String() != w.text {
			t.Errorf("client %d = pid %d unit %q %q, want pid %d unit %q %q", i, c.PID, c.Unit, c.String(), w.pid, w.unit, w.text)
		}
	}
}

func TestIdentifyGoneAndFailing(t *testing.T) {
	conns := []Conn{{BackendPID: 3001, Addr: "127.0.0.1", Port: 41234}}
	// The process left between ss and the reading of /proc.
	clients, err := Identify(context.Background(), host("@unit ovirt-engine\n0\n"), conns, []string{"ovirt-engine"})
	if err != nil || clients[0].PID != 0 {
		t.Errorf("a client gone meanwhile: %+v, %v", clients, err)
	}
	failing := func(_ context.Context, script string) (string, error) {
		return "", errors.New("ss (iproute2) is not installed")
	}
	if _, err := Identify(context.Background(), failing, conns, nil); err == nil || !strings.Contains(err.Error(), "iproute2") {
		t.Errorf("without ss: %v", err)
	}
	// No connection: nothing to run on the host.
	never := func(context.Context, string) (string, error) {
		t.Fatal("ran a script for no connection")
		return "", nil
	}
	if clients, err := Identify(context.Background(), never, nil, nil); err != nil || len(clients) != 0 {
		t.Errorf("no connection: %v, %v", clients, err)
	}
}

// The process script is run for real on this machine, for the test's
// own process: it must list it and walk to its parent.
func TestProcessScriptHere(t *testing.T) {
	out, err := exec.Command("sh", "-c", processScript([]int{os.Getpid()}, []string{"migrun-no-such-unit"})).Output()
	if err != nil {
		t.Fatalf("the script fails: %v\n%s", err, out)
	}
	procs, mains := parseProcesses(string(out))
	me := procs[os.Getpid()]
	if me == nil || me.name == "" || me.ppid != os.Getppid() || me.uid != os.Getuid() || len(me.cgroups) == 0 {
		t.Fatalf("this process read as %+v from:\n%s", me, out)
	}
	if procs[os.Getppid()] == nil && os.Getppid() > 1 {
		t.Errorf("the parent %d is not listed:\n%s", os.Getppid(), out)
	}
	if len(mains) != 0 {
		t.Errorf("a unit that does not exist has a main pid: %v", mains)
	}
}
