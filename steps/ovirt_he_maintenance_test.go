package steps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// vmStatus is `hosted-engine --vm-status --json` of a two-host hosted
// engine, as 4.5 prints it: a member per host id, and the cluster's
// global_maintenance.
func vmStatus(global bool) string {
	return `{"1": {"host-id": 1, "hostname": "host1", "engine-status": {"vm": "up", "health": "good", "detail": "Up"}, "score": 3400, "maintenance": false}, ` +
		`"2": {"host-id": 2, "hostname": "host2", "engine-status": {"vm": "down", "health": "bad", "detail": "unknown"}, "score": 3400, "maintenance": false}, ` +
		`"global_maintenance": ` + map[bool]string{true: "true", false: "false"}[global] + `}` + "\n"
}

func TestOvirtHEMaintenance(t *testing.T) {
	deployed := replyOut("hosted-engine --check-deployed", 0, "")
	quick := func(mode string) *OvirtHEMaintenance {
		return &OvirtHEMaintenance{Mode: mode, Timeout: "1s", pollEvery: time.Millisecond}
	}
	for _, tt := range []hostKindCase{
		{
			name: "set: the agents report it on their next pass",
			spec: quick("global"),
			replies: replies(deployed,
				replyOut("hosted-engine --vm-status", 0, vmStatus(false)).once(2),
				replyOut("hosted-engine --set-maintenance --mode=global", 0, ""),
				replyOut("hosted-engine --vm-status", 0, vmStatus(true))),
			wantReason: "global maintenance off",
			wantActs:   []string{"run on db: hosted-engine --set-maintenance --mode=global (then wait until the hosts report global maintenance on, at most 1s)"},
			wantApply: []string{
				"? hosted-engine --check-deployed", "? hosted-engine --vm-status --json",
				"! hosted-engine --set-maintenance --mode=global",
				"? hosted-engine --check-deployed", "? hosted-engine --vm-status --json",
				"? hosted-engine --check-deployed", "? hosted-engine --vm-status --json",
			},
		},
		{
			name:       "set: already on",
			spec:       quick("global"),
			replies:    replies(deployed, replyOut("hosted-engine --vm-status", 0, vmStatus(true))),
			wantDone:   true,
			wantReason: "global maintenance on",
			wantActs:   []string{"run on db: hosted-engine --set-maintenance --mode=global (then wait until the hosts report global maintenance on, at most 1s)"},
			wantApply:  []string{"? hosted-engine --check-deployed", "? hosted-engine --vm-status --json"},
		},
		{
			name: "clear",
			spec: quick("none"),
			replies: replies(deployed,
				replyOut("hosted-engine --vm-status", 0, vmStatus(true)).once(1),
				replyOut("hosted-engine --set-maintenance --mode=none", 0, ""),
				replyOut("hosted-engine --vm-status", 0, vmStatus(false))),
			wantReason: "global maintenance on",
			wantActs:   []string{"run on db: hosted-engine --set-maintenance --mode=none (then wait until the hosts report global maintenance off, at most 1s)"},
		},
		{
			name: "the agents never report it",
			spec: quick("global"),
			replies: replies(deployed,
				replyOut("hosted-engine --set-maintenance --mode=global", 0, ""),
				replyOut("hosted-engine --vm-status", 0, vmStatus(false))),
			wantReason: "global maintenance off",
			wantActs:   []string{"run on db: hosted-engine --set-maintenance --mode=global (then wait until the hosts report global maintenance on, at most 1s)"},
			wantErr:    "still report global maintenance off 1s after hosted-engine --set-maintenance --mode=global",
		},
	} {
		t.Run(tt.name, tt.run)
	}
}

// The check refuses, before any change, a host where global maintenance
// cannot be set: no hosted-engine, no hosted engine deployed, agents down,
// an answer that is not the JSON expected.
func TestOvirtHEMaintenanceRefuses(t *testing.T) {
	for _, tt := range []struct {
		name    string
		replies []*scriptedReply
		want    string
	}{
		{"not a hosted-engine host", []*scriptedReply{replyFail("hosted-engine --check-deployed", 127, "sh: hosted-engine: command not found")},
			"hosted-engine is not installed here"},
		{"not deployed", []*scriptedReply{replyFail("hosted-engine --check-deployed", 1, "The hosted engine has not been deployed!")},
			"no hosted engine is deployed here (hosted-engine --check-deployed: The hosted engine has not been deployed!)"},
		{"agents down", []*scriptedReply{replyOut("hosted-engine --check-deployed", 0, ""),
			replyFail("hosted-engine --vm-status", 1, "Failed to connect to broker, the number of errors has exceeded the limit (1)")},
			"the HA agents do not answer (hosted-engine --vm-status: Failed to connect to broker"},
		{"not JSON", []*scriptedReply{replyOut("hosted-engine --check-deployed", 0, ""),
			replyOut("hosted-engine --vm-status", 0, "--== Host host1 (id: 1) status ==--\n")},
			"not JSON"},
		{"no global_maintenance", []*scriptedReply{replyOut("hosted-engine --check-deployed", 0, ""),
			replyOut("hosted-engine --vm-status", 0, `{"1": {"host-id": 1}}`)},
			"no global_maintenance in"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newScriptedHost(t, tt.replies...)
			rt := runOn(h)
			rt.StepID = "he-global-maintenance"
			_, err := (&OvirtHEMaintenance{Mode: "global"}).Check(context.Background(), rt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check error = %v, want one containing %q", err, tt.want)
			}
			var where *WhereError
			if !errors.As(err, &where) || !strings.HasSuffix(where.Where, " on db") {
				t.Errorf("the error does not say where it failed: %v", err)
			}
			if c := h.changes(); len(c) > 0 {
				t.Errorf("Check changed the host: %q", c)
			}
		})
	}
}

func TestOvirtHEMaintenanceValidate(t *testing.T) {
	if ps := (&OvirtHEMaintenance{Mode: "global", Timeout: "soon"}).Validate(); len(ps) != 1 || ps[0].Field != "timeout" {
		t.Errorf("Validate = %v, want a problem with timeout", ps)
	}
	if ps := (&OvirtHEMaintenance{Mode: "global", Timeout: "90s"}).Validate(); len(ps) != 0 {
		t.Errorf("Validate = %v, want none", ps)
	}
}
