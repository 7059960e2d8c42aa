package plan_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// compileSchema generates the plan schema for reg and compiles it, which
// also checks it against the draft 2020-12 meta-schema.
func compileSchema(t *testing.T, reg *steps.Registry) *jsonschema.Schema {
	t.Helper()
	raw, err := plan.JSONSchema(reg)
	if err != nil {
		t.Fatalf("JSONSchema: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("plan.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("plan.schema.json")
	if err != nil {
		t.Fatalf("compile the schema: %v", err)
	}
	return sch
}

// schemaAccepts converts the YAML plan src to JSON, as an editor's YAML
// language server does, and validates it against sch.
func schemaAccepts(t *testing.T, sch *jsonschema.Schema, src string) error {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		return err // not YAML: nothing for the schema to accept
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err // keys that are not strings: not JSON either
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return sch.Validate(inst)
}

func TestJSONSchemaStable(t *testing.T) {
	a, err := plan.JSONSchema(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := plan.JSONSchema(steps.Builtin())
	if !bytes.Equal(a, b) {
		t.Fatal("two runs of JSONSchema differ")
	}
	var head struct {
		Schema string `json:"$schema"`
	}
	if err := json.Unmarshal(a, &head); err != nil || head.Schema != plan.JSONSchemaDraft {
		t.Fatalf("$schema = %q, %v", head.Schema, err)
	}
	if !bytes.HasSuffix(a, []byte("}\n")) || !bytes.Contains(a, []byte("\n  \"properties\"")) {
		t.Fatal("the schema is not indented JSON ending in a newline")
	}
	if bytes.Contains(a, []byte(`\u003c`)) || bytes.Contains(a, []byte(`\u0026`)) {
		t.Fatal("the schema escapes < or & as for HTML")
	}
	compileSchema(t, nil)
}

// A plan around one step with the builtin kinds; the cases replace parts.
const schemaPlanHead = `version: 1
name: schema-test
vars:
  port: "5432"
  on: "yes"
  state: started
  dump: /tmp/engine.dump
hosts:
  db: {address: db.example.com, user: root}
  here: {local: true}
steps:
`

// TestJSONSchemaAgreesWithLoader: the schema rejects what the loader
// rejects for the reasons a schema can see, and accepts the edge cases the
// loader accepts.
func TestJSONSchemaAgreesWithLoader(t *testing.T) {
	tests := []struct {
		name  string
		plan  string // whole plan; "" to use head+steps
		steps string
		ok    bool
		// For a bad plan, what each says: the schema's message names
		// where (a JSON pointer), so a plan rejected for another reason
		// than the case's fails the test.
		schema, msg string
	}{
		// Accepted by both.
		{name: "scalar shorthand", steps: `  - {id: a, host: db, command: "systemctl stop x"}`, ok: true},
		{name: "scalar shorthand bool", steps: `  - {id: a, host: db, command: true}`, ok: true},
		{name: "var in int", steps: `  - {id: a, host: db, firewall: {port: "${port}"}}`, ok: true},
		{name: "var in bool", steps: `  - {id: a, host: db, wait: {http: "https://db/", insecure: "${on}"}}`, ok: true},
		{name: "var in enum", steps: `  - {id: a, host: db, service: {name: x, state: "${state}"}}`, ok: true},
		{name: "yaml bool for enum true|false", steps: `  - {id: a, host: db, service: {name: x, enabled: true}}`, ok: true},
		{name: "var in retries and timeout", steps: `  - {id: a, host: db, retries: "${port}", timeout: "${port}s", command: "true"}`, ok: true},
		{name: "all common keys", steps: `  - {id: a, host: db, description: d, become: postgres, timeout: 1m30s, retries: 2, when: "!on", command: "true"}`, ok: true},
		{name: "point of no return", steps: `  - {id: a, host: db, point_of_no_return: true, command: "true"}`, ok: true},
		{name: "point of no return from a var", steps: `  - {id: a, host: db, point_of_no_return: "${on}", command: "true"}`, ok: true},
		{name: "when with &&", steps: `  - {id: a, host: db, when: "on && !on", command: "true"}`, ok: true},
		{name: "number as text", steps: `  - {id: a, copy: {from: "db:${dump}", to: "${dump}", mode: 0600}}`, ok: true},
		{name: "kind without host", steps: `  - {id: a, copy: {from: "db:${dump}", to: "${dump}"}}`, ok: true},
		{name: "numeric id", steps: `  - {id: 1, host: db, command: "true"}`, ok: true},
		{name: "empty sections", plan: "version: 1\nname: x\nvars:\nsecrets:\nhosts:\n  h: {local: true}\nsteps:\n  - {id: a, host: h, command: \"true\"}\non_failure:\n", ok: true},
		{name: "secrets and host settings", plan: `version: 1
name: x
vars: {lh: "true", p: "2222"}
secrets:
  pw: {env: PW}
  key: {file: key.txt}
  ask: {prompt: "Password: "}
hosts:
  db: {address: "fe80::1", user: root, port: "${p}", identity_file: ~/.ssh/id, jump: bastion, become: su}
  here: {local: "${lh}"}
steps:
  - {id: a, host: db, command: {script: "cat", stdin: "${pw}"}}
`, ok: true},

		// Rejected by both.
		{name: "unknown plan key", plan: "version: 1\nname: x\nsteps:\n  - {id: a, copy: {from: /a, to: /b}}\nstep: []\n", schema: "at ''", msg: `unknown key "step"`},
		{name: "missing steps", plan: "version: 1\nname: x\n", schema: "at ''", msg: `missing required key "steps"`},
		{name: "no steps", plan: "version: 1\nname: x\nsteps: []\n", schema: "at '/steps'", msg: `the plan has no steps`},
		{name: "version 2", plan: "version: 2\nname: x\nsteps:\n  - {id: a, copy: {from: /a, to: /b}}\n", schema: "at '/version'", msg: `version: 2 is not supported`},
		{name: "bad plan name", plan: "version: 1\nname: My Plan\nsteps:\n  - {id: a, copy: {from: /a, to: /b}}\n", schema: "at '/name'", msg: `name: "My Plan"`},
		{name: "unknown host key", plan: "version: 1\nname: x\nhosts:\n  db: {address: db, usr: root}\nsteps:\n  - {id: a, copy: {from: /a, to: /b}}\n", schema: "at '/hosts/db'", msg: `unknown key "usr"`},
		{name: "host without address", plan: "version: 1\nname: x\nhosts:\n  db: {user: root}\nsteps:\n  - {id: a, copy: {from: /a, to: /b}}\n", schema: "at '/hosts/db'", msg: `needs address`},
		{name: "local host with address", plan: "version: 1\nname: x\nhosts:\n  db: {local: true, address: db}\nsteps:\n  - {id: a, copy: {from: /a, to: /b}}\n", schema: "at '/hosts/db'", msg: `exclude each other`},
		{name: "port out of range", plan: "version: 1\nname: x\nhosts:\n  db: {address: db, port: 70000}\nsteps:\n  - {id: a, copy: {from: /a, to: /b}}\n", schema: "at '/hosts/db/port'", msg: `not a TCP port`},
		{name: "user in address", plan: "version: 1\nname: x\nhosts:\n  db: {address: root@db}\nsteps:\n  - {id: a, copy: {from: /a, to: /b}}\n", schema: "at '/hosts/db/address'", msg: `give the user in user:`},
		{name: "host named workstation", plan: "version: 1\nname: x\nhosts:\n  workstation: {local: true}\nsteps:\n  - {id: a, copy: {from: /a, to: /b}}\n", schema: "invalid propertyName 'workstation'", msg: `reserved`},
		{name: "two secret sources", plan: "version: 1\nname: x\nsecrets:\n  pw: {env: PW, file: f}\nsteps:\n  - {id: a, copy: {from: /a, to: /b}}\n", schema: "at '/secrets/pw'", msg: `exactly one of env, file or prompt`},
		{name: "bad var name", plan: "version: 1\nname: x\nvars:\n  1x: a\nsteps:\n  - {id: a, copy: {from: /a, to: /b}}\n", schema: "invalid propertyName '1x'", msg: `bad var name`},
		{name: "unknown step key", steps: `  - {id: a, host: db, command: "true", hots: db}`, schema: "at '/steps/0'", msg: `unknown key "hots"`},
		{name: "unknown kind field", steps: `  - {id: a, host: db, service: {name: x, sate: started}}`, schema: "at '/steps/0/service'", msg: `unknown key "sate"`},
		{name: "unknown nested field", steps: `  - {id: a, host: db, pg_check: {login: {host: db, pasword: x}}}`, schema: "at '/steps/0/pg_check/login'", msg: `unknown key "pasword"`},
		{name: "missing id", steps: `  - {host: db, command: "true"}`, schema: "at '/steps/0'", msg: `missing id`},
		{name: "bad id", steps: `  - {id: Stop_It, host: db, command: "true"}`, schema: "at '/steps/0/id'", msg: `id: use lowercase`},
		{name: "no kind", steps: `  - {id: a, host: db}`, schema: "at '/steps/0'", msg: `no step kind`},
		{name: "two kinds", steps: `  - {id: a, host: db, command: "true", service: {name: x}}`, schema: "at '/steps/0'", msg: `a step has exactly one kind`},
		{name: "two kinds one without host", steps: `  - {id: a, copy: {from: /a, to: /b}, command: "true"}`, schema: "at '/steps/0'", msg: `a step has exactly one kind`},
		{name: "kind needs host", steps: `  - {id: a, command: "true"}`, schema: "at '/steps/0'", msg: `command needs host`},
		{name: "missing required field", steps: `  - {id: a, host: db, service: {state: started}}`, schema: "at '/steps/0/service'", msg: `missing required key "name"`},
		{name: "empty required field", steps: `  - {id: a, host: db, service: {name: ""}}`, schema: "at '/steps/0/service/name'", msg: `must not be empty`},
		{name: "nothing for a kind with required fields", steps: `  - {id: a, host: db, service: }`, schema: "at '/steps/0/service'", msg: `missing required key "name"`},
		{name: "shorthand for a kind without one", steps: `  - {id: a, host: db, service: postgresql}`, schema: "at '/steps/0/service'", msg: `want a mapping of its fields`},
		{name: "bad enum", steps: `  - {id: a, host: db, service: {name: x, state: sleeping}}`, schema: "at '/steps/0/service/state'", msg: `is not one of`},
		{name: "number for enum", steps: `  - {id: a, host: db, pg_dump: {database: e, file: /tmp/e, compress: 10}}`, schema: "at '/steps/0/pg_dump/compress'", msg: `is not one of`},
		{name: "string for int", steps: `  - {id: a, host: db, firewall: {port: http}}`, schema: "at '/steps/0/firewall/port'", msg: `want an integer`},
		{name: "float for int", steps: `  - {id: a, host: db, firewall: {port: 80.5}}`, schema: "at '/steps/0/firewall/port'", msg: `want an integer`},
		{name: "string for bool", steps: `  - {id: a, host: db, wait: {http: "https://db/", insecure: "yes"}}`, schema: "at '/steps/0/wait/insecure'", msg: `want true or false`},
		{name: "scalar for list", steps: `  - {id: a, host: db, command: {argv: ls}}`, schema: "at '/steps/0/command/argv'", msg: `want a list`},
		{name: "list for map", steps: `  - {id: a, host: db, command: {argv: [ls], env: [A=1]}}`, schema: "at '/steps/0/command/env'", msg: `want a mapping`},
		{name: "nothing for a string", steps: `  - {id: a, host: db, command: {script: }}`, schema: "at '/steps/0/command/script'", msg: `no value`},
		{name: "negative retries", steps: `  - {id: a, host: db, retries: -1, command: "true"}`, schema: "at '/steps/0/retries'", msg: `negative`},
		{name: "timeout without unit", steps: `  - {id: a, host: db, timeout: 30, command: "true"}`, schema: "at '/steps/0/timeout'", msg: `has no unit`},
		{name: "bad timeout", steps: `  - {id: a, host: db, timeout: soon, command: "true"}`, schema: "at '/steps/0/timeout'", msg: `not a duration`},
		{name: "bad when", steps: `  - {id: a, host: db, when: "not on", command: "true"}`, schema: "at '/steps/0/when'", msg: `want a var name`},
		{name: "empty host", steps: `  - {id: a, host: "", command: "true"}`, schema: "at '/steps/0/host'", msg: `host: must not be empty`},
		{name: "step not a mapping", steps: `  - just-a-string`, schema: "at '/steps/0'", msg: `want a mapping`},
		{name: "point of no return not a bool", steps: `  - {id: a, host: db, point_of_no_return: later, command: "true"}`, schema: "at '/steps/0/point_of_no_return'", msg: `want true or false`},
		{name: "point of no return in on_failure", plan: "version: 1\nname: x\nhosts:\n  h: {local: true}\nsteps:\n  - {id: a, host: h, command: \"true\"}\non_failure:\n  - {id: b, host: h, command: \"true\", point_of_no_return: false}\n", schema: "at '/on_failure/0'", msg: `point_of_no_return: only steps have one`},
		{name: "bad on_failure step", plan: "version: 1\nname: x\nhosts:\n  h: {local: true}\nsteps:\n  - {id: a, host: h, command: \"true\"}\non_failure:\n  - {id: b, host: h, command: \"true\", bogus: 1}\n", schema: "at '/on_failure/0'", msg: `unknown key "bogus"`},
	}
	reg := steps.Builtin()
	sch := compileSchema(t, reg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.plan
			if src == "" {
				src = schemaPlanHead + tt.steps + "\n"
			}
			_, loadErr := plan.Parse("plan.yaml", []byte(src), reg, nil)
			switch {
			case tt.ok && loadErr != nil:
				t.Errorf("the loader rejects it: %v", loadErr)
			case !tt.ok && (loadErr == nil || !strings.Contains(loadErr.Error(), tt.msg)):
				t.Errorf("the loader says %v, want %q", loadErr, tt.msg)
			}
			schemaErr := schemaAccepts(t, sch, src)
			switch {
			case tt.ok && schemaErr != nil:
				t.Errorf("the schema rejects it: %v", schemaErr)
			case !tt.ok && (schemaErr == nil || !strings.Contains(schemaErr.Error(), tt.schema)):
				t.Errorf("the schema says %v, want %q", schemaErr, tt.schema)
			}
		})
	}
}

// TestJSONSchemaNeverRejectsAValidPlan runs the loader's own valid plans
// (the fuzz seeds, for the test kinds) through the schema: an editor must
// not flag a plan that migrun accepts.
func TestJSONSchemaNeverRejectsAValidPlan(t *testing.T) {
	reg := testRegistry()
	sch := compileSchema(t, reg)
	srcs := map[string]string{"goodPlan": goodPlan}
	files, _ := filepath.Glob("testdata/fuzz/FuzzParse/*")
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		_, lit, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n")
		quoted, _ := strings.CutPrefix(lit, "[]byte(")
		data, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		srcs[filepath.Base(file)] = data
	}
	valid := 0
	for name, src := range srcs {
		if _, err := plan.Parse("plan.yaml", []byte(src), reg, nil); err != nil {
			continue
		}
		valid++
		if err := schemaAccepts(t, sch, src); err != nil {
			t.Errorf("%s: the loader accepts it, the schema does not: %v", name, err)
		}
	}
	if valid < 4 {
		t.Fatalf("only %d valid plans to check", valid)
	}
}

// TestJSONSchemaFields: every field steps.SchemaOf reports for every kind
// is in the schema, with its doc, required and enum, and nothing else is.
func TestJSONSchemaFields(t *testing.T) {
	raw, err := plan.JSONSchema(nil)
	if err != nil {
		t.Fatal(err)
	}
	var root struct {
		Defs struct {
			Step struct {
				Properties map[string]jsonNode `json:"properties"`
				OneOf      []jsonNode          `json:"oneOf"`
				DepReq     map[string][]string `json:"dependentRequired"`
			} `json:"step"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	step := root.Defs.Step
	kinds := steps.Builtin().Kinds()
	if len(step.OneOf) != len(kinds) {
		t.Errorf("%d oneOf branches for %d kinds", len(step.OneOf), len(kinds))
	}
	for _, k := range kinds {
		node, ok := step.Properties[k.Name]
		if !ok {
			t.Errorf("kind %s: not in the schema", k.Name)
			continue
		}
		if got := slices.Equal(step.DepReq[k.Name], []string{"host"}); got != k.NeedsHost {
			t.Errorf("kind %s: host required = %v, want %v", k.Name, got, k.NeedsHost)
		}
		body := node.body()
		if body == nil {
			t.Errorf("kind %s: no mapping of its fields", k.Name)
			continue
		}
		checkFields(t, k.Name, steps.SchemaOf(k.New()), *body)
	}
}

// jsonNode is the part of a schema node the field test reads.
type jsonNode struct {
	Description          string              `json:"description"`
	Type                 any                 `json:"type"`
	Properties           map[string]jsonNode `json:"properties"`
	Required             []string            `json:"required"`
	AdditionalProperties any                 `json:"additionalProperties"`
	AnyOf                []jsonNode          `json:"anyOf"`
	Enum                 []any               `json:"enum"`
	Default              any                 `json:"default"`
}

// body finds the mapping alternative of a kind's schema.
func (n jsonNode) body() *jsonNode {
	if n.Type == "object" {
		return &n
	}
	for _, alt := range n.AnyOf {
		if alt.Type == "object" {
			return &alt
		}
	}
	return nil
}

func checkFields(t *testing.T, path string, fields []steps.Field, obj jsonNode) {
	t.Helper()
	if obj.AdditionalProperties != false {
		t.Errorf("%s: additionalProperties = %v, want false", path, obj.AdditionalProperties)
	}
	if len(obj.Properties) != len(fields) {
		t.Errorf("%s: %d properties for %d fields", path, len(obj.Properties), len(fields))
	}
	for _, f := range fields {
		fpath := path + "." + f.Key
		p, ok := obj.Properties[f.Key]
		switch {
		case !ok:
			t.Errorf("%s: not in the schema", fpath)
			continue
		case p.Description != f.Doc:
			t.Errorf("%s: description %q, want %q", fpath, p.Description, f.Doc)
		case slices.Contains(obj.Required, f.Key) != f.Required:
			t.Errorf("%s: required = %v, want %v", fpath, !f.Required, f.Required)
		}
		if f.Enum != nil {
			var enum []any
			for _, alt := range p.AnyOf {
				enum = append(enum, alt.Enum...)
			}
			for _, e := range f.Enum {
				if !slices.Contains(enum, any(e)) {
					t.Errorf("%s: enum %v lacks %q", fpath, enum, e)
				}
			}
		}
		if f.Default != "" && p.Default == nil {
			t.Errorf("%s: no default, want %q", fpath, f.Default)
		}
		if f.Type == steps.TypeObject {
			checkFields(t, fpath, f.Fields, p)
		}
	}
}
