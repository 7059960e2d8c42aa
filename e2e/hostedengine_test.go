//go:build e2e

package e2e

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A hosted engine: the Manager runs as a VM that the HA agents of its
// hosts restart when its engine is down, unless the cluster is in global
// maintenance. db doubles as such a host (e2e/standin/hosted-engine and
// ovirt-ha-agent), watching engine's health page.

// deployHostedEngine makes the test hosts a hosted engine: the engine
// database gets the hosted-engine VM (origin 6, as a deployment leaves it),
// db its hosted-engine.conf and a running HA agent. It first shows that
// the agent can fail a run: with the engine stopped a few seconds outside
// global maintenance, it restarts the engine VM. The vars returned point
// the plan at the hosted engine's host.
func deployHostedEngine(t *testing.T) []string {
	t.Helper()
	psqlOn(t, "engine", "engine", `insert into vm_static (vm_name, mem_size_mb, num_of_cpus, origin, cluster_id, description)
		select 'HostedEngine', 16384, 4, 6, cluster_id, 'Hosted engine' from cluster where name = 'Default'`)
	sshOut(t, "db", "mkdir -p /etc/ovirt-hosted-engine && printf 'fqdn=%s\\nvm_disk_id=e2e\\n' "+ip("engine")+
		" >/etc/ovirt-hosted-engine/hosted-engine.conf && systemctl start ovirt-ha-agent")
	waitAgent(t, "engine health good", time.Time{})

	stopped := time.Now()
	sshOut(t, "engine", "systemctl stop ovirt-engine")
	waitAgent(t, "restart engine VM", stopped)
	sshOut(t, "engine", "systemctl start ovirt-engine")
	waitAgent(t, "engine health good", time.Now())
	return []string{"--var", "he_host=" + ip("db")}
}

// agentEvent is a line of the stand-in HA agent's log.
type agentEvent struct {
	at   time.Time
	text string
}

func agentEvents(t *testing.T) []agentEvent {
	t.Helper()
	f, err := os.Open(filepath.Join(env["MIGRUN_E2E_DB_DIR"], "fs/var/lib/ovirt-standin/ovirt-ha-agent.log"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // the agent has not started yet
	}
	if err != nil {
		t.Fatalf("the HA agent's log: %v", err)
	}
	defer f.Close()
	var evs []agentEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		stamp, text, _ := strings.Cut(sc.Text(), " ")
		sec, err := strconv.ParseFloat(stamp, 64)
		if err != nil {
			t.Fatalf("HA agent log line %q: %v", sc.Text(), err)
		}
		evs = append(evs, agentEvent{at: time.Unix(0, int64(sec*1e9)), text: text})
	}
	return evs
}

// waitAgent waits up to 15 s for the agent to log an event starting with
// prefix after since.
func waitAgent(t *testing.T, prefix string, since time.Time) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range agentEvents(t) {
			if e.at.After(since) && strings.HasPrefix(e.text, prefix) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the HA agent did not log %q after %s", prefix, since.Format(time.TimeOnly))
}

// assertGlobalMaintenance: since since, the agents saw global maintenance
// set before the engine went down, and cleared only once it was healthy
// again; they never restarted the engine VM.
func assertGlobalMaintenance(t *testing.T, since time.Time) {
	t.Helper()
	var on, down, up, off time.Time
	var lines []string
	for _, e := range agentEvents(t) {
		if !e.at.After(since) {
			continue
		}
		lines = append(lines, e.at.Format("15:04:05.000")+" "+e.text)
		switch {
		case strings.HasPrefix(e.text, "restart engine VM"):
			t.Errorf("the HA agent restarted the engine VM in the middle of the run: %s", e.text)
		case e.text == "global maintenance true" && on.IsZero():
			on = e.at
		case e.text == "engine health bad" && !on.IsZero() && down.IsZero():
			down = e.at
		case e.text == "engine health good" && !down.IsZero() && up.IsZero():
			up = e.at
		case e.text == "global maintenance false":
			off = e.at
		}
	}
	t.Logf("HA agent:\n%s", indent(strings.Join(lines, "\n")+"\n"))
	switch {
	case on.IsZero():
		t.Error("global maintenance was never set")
	case down.IsZero() || up.IsZero():
		t.Error("the agents did not see the engine stop and come back in global maintenance")
	case off.IsZero():
		t.Error("global maintenance was never cleared")
	case off.Before(up):
		t.Errorf("global maintenance cleared at %s, before the engine was healthy again at %s", off.Format(time.TimeOnly), up.Format(time.TimeOnly))
	}
	if got := sshOut(t, "db", "hosted-engine --vm-status --json"); !strings.Contains(got, `"global_maintenance": false`) {
		t.Errorf("after the run: %s", got)
	}
}
