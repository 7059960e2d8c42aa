package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/migrun/migrun/runner"
)

const eventSchemaFile = "../../docs/events.schema.json"

func eventSchema(t *testing.T) (*jsonschema.Schema, map[string]any) {
	t.Helper()
	return compileSchema(t, eventSchemaFile, "events.schema.json", true)
}

// eventsPlan exercises every event an apply emits: a step long enough to
// be reported running, a copy with progress, a failure and on_failure.
const eventsPlan = `version: 1
name: events-test
vars:
  dir: /nonexistent
  fail: "false"
hosts:
  here: {local: true}
steps:
  - id: make
    host: here
    description: a file to copy
    command: {script: 'head -c 3000000 /dev/zero > "${dir}/big"', creates: "${dir}/big"}
  - id: slow
    host: here
    command: {argv: [sleep, "2.4"]}
  - id: copy-big
    copy: {from: "here:${dir}/big", to: "${dir}/big.copy"}
  - id: maybe-fail
    host: here
    when: fail
    command: {argv: ["false"]}
on_failure:
  - id: note
    host: here
    command: {argv: ["true"]}
`

// TestEventsMatchSchema: every line --output json prints, in a dry run, an
// apply and a failed apply with on_failure, validates against
// docs/events.schema.json, and the schema's enumerations are the
// runner's.
func TestEventsMatchSchema(t *testing.T) {
	sch, doc := eventSchema(t)
	typeEnum := doc["properties"].(map[string]any)["type"].(map[string]any)["enum"].([]any)
	var schemaTypes []string
	for _, v := range typeEnum {
		schemaTypes = append(schemaTypes, v.(string))
	}
	if !slices.Equal(schemaTypes, runner.EventTypes) {
		t.Errorf("schema event types %v, runner's %v", schemaTypes, runner.EventTypes)
	}

	seen := map[string]bool{}
	check := func(name string, out string) {
		t.Helper()
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(nil, 1<<20)
		n := 0
		for sc.Scan() {
			n++
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(sc.Bytes()))
			if err != nil {
				t.Fatalf("%s: not JSON: %q", name, sc.Text())
			}
			if err := sch.Validate(inst); err != nil {
				t.Errorf("%s: event %s\n%v", name, sc.Text(), err)
			}
			var e struct{ Type string }
			json.Unmarshal(sc.Bytes(), &e)
			seen[e.Type] = true
		}
		if n == 0 {
			t.Errorf("%s printed no events", name)
		}
	}

	planFile, dir := writePlan(t, eventsPlan)
	vars := []string{"--var", "dir=" + dir}
	_, out, _ := cli(t, nil, append([]string{"plan", "--output", "json", planFile}, vars...)...)
	check("plan", out)
	code, out, errOut := cli(t, nil, append([]string{"apply", "--yes", "--output", "json", planFile}, vars...)...)
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, errOut)
	}
	check("apply", out)

	failFile, failDir := writePlan(t, strings.Replace(eventsPlan, `fail: "false"`, `fail: "true"`, 1))
	code, out, _ = cli(t, nil, "apply", "--yes", "--output", "json", "--var", "dir="+failDir, failFile)
	if code == 0 {
		t.Fatal("the failing plan succeeded")
	}
	check("failed apply", out)

	for _, want := range []string{"run_start", "step_plan", "step_start", "step_running", "progress", "step_end", "rollback_start", "run_end"} {
		if !seen[want] {
			t.Errorf("no %s event was produced to check", want)
		}
	}
}

// TestEventSchemaRefuses: the schema is strict enough to catch drift: an
// unknown key, a camel-case key and a status outside the list all fail.
func TestEventSchemaRefuses(t *testing.T) {
	sch, _ := eventSchema(t)
	for _, line := range []string{
		`{"version":1,"time":"2026-12-05T10:00:00Z","type":"step_end","plan":"p","step":"s","status":"ok"}`,
		`{"version":1,"time":"2026-12-05T10:00:00Z","type":"step_end","plan":"p","step":"s","status":"done","Host":"db"}`,
		`{"version":1,"time":"2026-12-05T10:00:00Z","type":"bogus","plan":"p"}`,
		`{"version":2,"time":"2026-12-05T10:00:00Z","type":"run_start","plan":"p","mode":"fresh"}`,
		`{"version":1,"time":"2026-12-05T10:00:00Z","type":"progress","plan":"p","step":"s"}`,
		`{"version":1,"time":"yesterday","type":"run_start","plan":"p","mode":"fresh"}`,
	} {
		inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(line))
		if err := sch.Validate(inst); err == nil {
			t.Errorf("schema accepts %s", line)
		}
	}
}
