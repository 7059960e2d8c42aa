package plan_test

import (
	"slices"
	"strings"
	"testing"
)

func TestDigests(t *testing.T) {
	base := mustParse(t, goodPlan, nil)
	again := mustParse(t, goodPlan, nil)
	if base.Digest != again.Digest {
		t.Fatalf("plan digest differs between two loads: %s, %s", base.Digest, again.Digest)
	}
	for i := range base.Steps {
		if base.Steps[i].Digest != again.Steps[i].Digest {
			t.Fatalf("step %s digest differs between two loads", base.Steps[i].ID)
		}
	}

	// Each case edits goodPlan and says which digests must change.
	tests := []struct {
		name        string
		old, new    string
		overrides   map[string]string
		planChanges bool
		changed     []string // ids of steps and on_failure steps whose digest changes
	}{
		{name: "spec field", old: "state: stopped}", new: "state: restarted}", planChanges: true, changed: []string{"stop-engine"}},
		{name: "nested spec field", old: "owner: {user: postgres}", new: "owner: {user: postgres, group: pg}", planChanges: true, changed: []string{"copy-dump"}},
		{name: "common field", old: "retries: 2", new: "retries: 3", planChanges: true, changed: []string{"load"}},
		{name: "var used by a step", old: "port: 5432", new: "port: 5433", planChanges: true, changed: []string{"load"}},
		{name: "address of a host a step touches", overrides: map[string]string{"db_host": "db2"}, planChanges: true, changed: []string{"copy-dump", "load"}},
		{name: "point of no return", old: "state: stopped}", new: "state: stopped}\n    point_of_no_return: true", planChanges: true, changed: []string{"stop-engine"}},
		{name: "on_failure", old: "wait: 30", new: "wait: 31", planChanges: true, changed: []string{"restart-engine-on-old-db"}},
		{name: "value of a when var", overrides: map[string]string{"verify": "no"}, planChanges: true},
		{name: "plan description", old: "description: Move", new: "description: Really move"},
		{name: "step description", old: "Stop the engine so", new: "Stop engine so"},
		{name: "an explicit zero value", old: "state: stopped}", new: "state: stopped, enabled: false, args: []}"},
		{name: "key order", old: "{name: ovirt-engine, state: stopped}", new: "{state: stopped, name: ovirt-engine}"},
		{name: "a var nobody uses", old: "  verify: yes\n", new: "  verify: yes\n  extra: x\n"},
		{name: "a secret source", old: "{env: ENGINE_DB_PASSWORD}", new: "{file: /etc/pw}"},
		{name: "yaml style", old: "stdin: \"${engine_db_password}\"", new: "stdin: '${engine_db_password}'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := goodPlan
			if tt.old != "" {
				if !strings.Contains(src, tt.old) {
					t.Fatalf("goodPlan has no %q", tt.old)
				}
				src = strings.Replace(src, tt.old, tt.new, 1)
			}
			p := mustParse(t, src, tt.overrides)
			if got := p.Digest != base.Digest; got != tt.planChanges {
				t.Errorf("plan digest changed: %v, want %v", got, tt.planChanges)
			}
			want := map[string]bool{}
			for _, id := range tt.changed {
				want[id] = true
			}
			all := slices.Concat(p.Steps, p.OnFailure)
			before := slices.Concat(base.Steps, base.OnFailure)
			for i, st := range all {
				if got := st.Digest != before[i].Digest; got != want[st.ID] {
					t.Errorf("step %s digest changed: %v, want %v", st.ID, got, want[st.ID])
				}
			}
		})
	}
}
