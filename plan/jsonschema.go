package plan

// Longer than 400 lines on purpose: the schema for editors is built from
// the same registry the loader checks against, and each of its parts (plan,
// hosts, secrets, step, one per field type) is a small function kept next to
// the others so one reading shows the whole document.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/migrun/migrun/steps"
)

// JSONSchemaDraft is the JSON Schema dialect JSONSchema emits.
const JSONSchemaDraft = "https://json-schema.org/draft/2020-12/schema"

// JSONSchema returns a JSON Schema of the plan format with the step kinds
// of reg (nil: the builtin ones), for editors and CI jobs. The output is
// indented and the same for the same kinds, so it can be committed.
//
// It is generated from what the loader decodes: the plan, host and step
// keys it knows and steps.SchemaOf for each kind, so it cannot drift from
// them. A JSON Schema cannot resolve ${...}, look up a host or a var, or
// run a kind's Validate, so it accepts more than Parse: a string holding
// "${" stands for any int, bool or enum value, and a check that depends on
// a value the plan interpolates is left to the loader. Whatever the schema
// rejects, Parse rejects too.
func JSONSchema(reg *steps.Registry) ([]byte, error) {
	if reg == nil {
		reg = steps.Builtin()
	}
	root, err := planSchema(reg)
	if err != nil {
		return nil, err
	}
	compact, err := marshal(root)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("indent the plan schema: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// object is a JSON object that keeps its members in the order they were
// written, so the schema reads top-down like the README and a new field
// makes a small diff.
type object []member

type member struct {
	key string
	val any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(m.key)
		if err != nil {
			return nil, err
		}
		v, err := marshal(m.val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping: doc strings hold "<" and
// "&", which an editor should show as themselves.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// with returns o with a member added when val is set: nil, "" and an
// empty list leave out optional keywords such as "description" and
// "required".
func (o object) with(key string, val any) object {
	switch v := val.(type) {
	case nil:
		return o
	case string:
		if v == "" {
			return o
		}
	case []string:
		if len(v) == 0 {
			return o
		}
	}
	return append(o, member{key, val})
}

// Patterns mirror the loader's checks on the text as written; a pattern
// only constrains strings, so a number or a bool still passes where the
// loader takes it as text.
const (
	// refPattern: the loader interpolates a string holding "${" and
	// checks the result, so such a string may stand for an int, a bool or
	// an enum value.
	refPattern = `\$\{`
	// durationPattern is what time.ParseDuration reads, without a sign.
	durationPattern = `^\+?(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`
	// noOptionPattern: a host field must not read as an ssh option (leading
	// "-"), and white space would split it.
	noOptionPattern = `^[^- \t\r\n][^ \t\r\n]*$`
)

// def refers to the shared definition name (see definitions), plus the
// keywords in more, such as a pattern for one field.
func def(name string, more ...member) object {
	return append(object{{"$ref", "#/$defs/" + name}}, more...)
}

// described puts a description before the keywords of s.
func described(doc string, s object) object {
	return append(object{{"description", doc}}, s...)
}

// definitions are the value types the loader reads in many places.
func definitions() object {
	return object{
		{"text", object{
			{"$comment", "a scalar the loader reads as text: numbers and bools are kept as written (mode: 0600 stays \"0600\")"},
			{"type", []string{"string", "number", "boolean"}},
		}},
		{"ref", object{
			{"$comment", "a string holding a ${...} reference, checked after interpolation"},
			{"type", "string"},
			{"pattern", refPattern},
		}},
		{"int", object{
			{"$comment", `an integer, or "${var}" holding one`},
			{"anyOf", []any{object{{"type", "integer"}}, def("ref")}},
		}},
		{"bool", object{
			{"$comment", `true or false, or "${var}" holding one`},
			{"anyOf", []any{object{{"type", "boolean"}}, def("ref")}},
		}},
	}
}

// planSchema builds the schema of a whole plan.
func planSchema(reg *steps.Registry) (object, error) {
	props := object{}
	for _, key := range topKeys {
		s, err := topKeySchema(key)
		if err != nil {
			return nil, err
		}
		props = append(props, member{key, s})
	}
	step, err := stepSchema(reg)
	if err != nil {
		return nil, err
	}
	host, err := hostSchema()
	if err != nil {
		return nil, err
	}
	defs := append(definitions(),
		member{"step", step},
		member{"host", host},
		member{"secret", secretSchema()},
	)
	return object{
		{"$schema", JSONSchemaDraft},
		{"$comment", "Generated by `migrun schema` from the schema the plan loader enforces; do not edit, run `make schema`."},
		{"title", "migrun plan"},
		{"description", "A migration plan: vars, secrets, hosts and the steps to run in order. `migrun validate` checks what a schema cannot (hosts, vars, ids)."},
		{"type", "object"},
		{"properties", props},
		{"required", []string{"version", "name", "steps"}},
		{"additionalProperties", false},
		{"$defs", defs},
	}, nil
}

func topKeySchema(key string) (object, error) {
	nameMap := func(doc, namePattern string, values object) object {
		return object{
			{"description", doc},
			{"type", []string{"object", "null"}},
			{"propertyNames", object{{"pattern", namePattern}}},
			{"additionalProperties", values},
		}
	}
	switch key {
	case "version":
		return object{
			{"description", "the plan format version; must be " + strconv.Itoa(Version)},
			{"anyOf", []any{object{{"const", Version}}, def("ref")}},
		}, nil
	case "name":
		return described("names the journal and the lock: lowercase letters, digits and -", def("text", member{"pattern", idRE.String()})), nil
	case "description":
		return described("free text", def("text")), nil
	case "vars":
		return nameMap("plain values, used as ${name}; --var name=value overrides one",
			varNameRE.String(), def("text")), nil
	case "secrets":
		return nameMap("where each secret's value comes from; never stored in the plan, never printed",
			varNameRE.String(), def("secret")), nil
	case "hosts":
		names := object{
			{"pattern", hostNameRE.String()},
			{"not", object{{"const", workstation}}},
		}
		return object{
			{"description", "the machines the plan touches, by name; \"" + workstation + "\" is reserved for the one migrun runs on"},
			{"type", []string{"object", "null"}},
			{"propertyNames", names},
			{"additionalProperties", def("host")},
		}, nil
	case "detect":
		probe := func(key string) object {
			return object{{"required", []string{key}}}
		}
		entry := object{
			{"description", "a yes/no fact found on a host, read-only, when a run starts (kept in its journal for a resume); when: uses it as a var"},
			{"type", "object"},
			{"properties", object{
				{"host", described("the plan host the probe runs on", def("text"))},
				{"description", described("free text", def("text"))},
				{"file", described("true when this absolute path exists", def("text", member{"pattern", "^(/|\\$\\{)"}))},
				{"command", described("a read-only shell script: exit 0 true, 1 false, anything else fails the run before its first step", def("text", member{"minLength", 1}))},
				{"pg_database", object{
					{"description", "true when the host's PostgreSQL (local socket, as os_user) has this database"},
					{"type", "object"},
					{"properties", object{
						{"name", def("text", member{"minLength", 1})},
						{"port", described("default 5432", def("int", member{"minimum", 1}, member{"maximum", 65535}))},
						{"os_user", described("default postgres", def("text"))},
					}},
					{"required", []string{"name"}},
					{"additionalProperties", false},
				}},
			}},
			{"required", []string{"host"}},
			{"additionalProperties", false},
			{"oneOf", []any{probe("file"), probe("command"), probe("pg_database")}},
		}
		return nameMap("facts about the hosts, found when a run starts; each name is used in when: as a var is",
			varNameRE.String(), entry), nil
	case "steps":
		return object{
			{"description", "the steps, run in order"},
			{"type", "array"},
			{"minItems", 1},
			{"items", def("step")},
		}, nil
	case "on_failure":
		return object{
			{"description", "steps run in order when a step fails (not when you interrupt, nor after a done point_of_no_return step)"},
			{"type", []string{"array", "null"}},
			{"items", object{{"allOf", []any{def("step"), object{{"not", object{{"required", []string{"point_of_no_return"}}}}}}}}},
		}, nil
	}
	return nil, fmt.Errorf("plan schema: no schema for plan key %q", key)
}

func secretSchema() object {
	return object{
		{"description", "exactly one of env, file or prompt; file may come with host and key"},
		{"type", "object"},
		{"properties", object{
			{"env", object{
				{"description", "environment variable holding the value"},
				{"anyOf", []any{object{{"type", "string"}, {"pattern", varNameRE.String()}}, def("ref")}},
			}},
			{"file", described("file whose first line is the value (with key: whose KEY=\"value\" line); relative to the plan's directory, or with host: an absolute path on that host", def("text", member{"minLength", 1}))},
			{"prompt", described("text of a no-echo prompt on the terminal", def("text", member{"minLength", 1}))},
			{"host", described("with file: the plan host the file is on, read once connected and only when a step that will run uses the secret", def("text", member{"minLength", 1}))},
			{"key", described("with file: the KEY of a KEY=\"value\" line (shell syntax, as oVirt's *.conf files) holding the value", def("text", member{"pattern", varNameRE.String()}))},
		}},
		{"additionalProperties", false},
		{"oneOf", []any{
			object{{"required", []string{"env"}}},
			object{{"required", []string{"file"}}},
			object{{"required", []string{"prompt"}}},
		}},
		{"dependentRequired", object{{"host", []string{"file"}}, {"key", []string{"file"}}}},
	}
}

// hostSchema mirrors plan.host and checkHostField.
func hostSchema() (object, error) {
	props := object{}
	for _, key := range hostKeys {
		var s object
		switch key {
		case "local":
			s = described("the workstation itself; excludes address and the connection settings", def("bool"))
		case "address":
			s = described("host name or IP address; the user and port have keys of their own", def("text", member{"pattern", `^[^- \t\r\n@][^ \t\r\n@]*$`}))
		case "user":
			s = described("SSH login user", def("text", member{"pattern", noOptionPattern}))
		case "port":
			s = described("SSH port; default from ~/.ssh/config, else 22", def("int", member{"minimum", 1}, member{"maximum", 65535}))
		case "identity_file":
			s = described("private key file", def("text", member{"pattern", `^[^-]`}))
		case "jump":
			s = described("ProxyJump: another host of the plan by name, or [user@]host[:port][,...]", def("text", member{"pattern", noOptionPattern}))
		case "become":
			s = object{
				{"description", "how steps' become: switches user"},
				{"anyOf", []any{object{{"enum", []string{"sudo", "su"}}}, def("ref")}},
				{"default", "sudo"},
			}
		default:
			return nil, fmt.Errorf("plan schema: no schema for host key %q", key)
		}
		props = append(props, member{key, s})
	}
	// local: true forbids the connection settings; a host that is not
	// local (local left out or false) needs an address. A "${var}" for
	// local matches neither rule: only the loader knows its value.
	forbidden := object{}
	for _, key := range []string{"address", "user", "port", "identity_file", "jump"} {
		forbidden = append(forbidden, member{key, false})
	}
	rules := []any{
		object{
			{"if", object{{"properties", object{{"local", object{{"const", true}}}}}, {"required", []string{"local"}}}},
			{"then", object{{"properties", forbidden}}},
		},
		object{
			{"if", object{{"properties", object{{"local", object{{"const", false}}}}}}},
			{"then", object{{"required", []string{"address"}}}},
		},
	}
	return object{
		{"description", "a machine the plan touches: {local: true}, or an SSH address with its settings"},
		{"type", "object"},
		{"properties", props},
		{"additionalProperties", false},
		{"allOf", rules},
	}, nil
}

// stepSchema mirrors plan.step: the common keys, exactly one kind key, and
// host: for the kinds that run on one host.
func stepSchema(reg *steps.Registry) (object, error) {
	props := object{}
	for _, key := range stepKeys {
		s, err := stepKeySchema(key)
		if err != nil {
			return nil, err
		}
		props = append(props, member{key, s})
	}
	var oneKind []any
	needsHost := object{}
	for _, k := range reg.Kinds() {
		if slices.Contains(stepKeys, k.Name) {
			return nil, fmt.Errorf("plan schema: step kind %q has the name of a common step key", k.Name)
		}
		props = append(props, member{k.Name, kindSchema(k)})
		oneKind = append(oneKind, object{{"required", []string{k.Name}}})
		if k.NeedsHost {
			needsHost = append(needsHost, member{k.Name, []string{"host"}})
		}
	}
	return object{
		{"description", "one step: an id, the common keys and exactly one step-kind key"},
		{"type", "object"},
		{"properties", props},
		{"required", []string{"id"}},
		{"additionalProperties", false},
		{"oneOf", oneKind},
		{"dependentRequired", needsHost},
	}, nil
}

func stepKeySchema(key string) (object, error) {
	switch key {
	case "id":
		return described("unique across steps and on_failure: lowercase letters, digits and -", def("text", member{"pattern", idRE.String()})), nil
	case "host":
		return described("the plan host the step runs on (required by kinds that run on one host)", def("text", member{"minLength", 1})), nil
	case "description":
		return described("shown in the dry run", def("text")), nil
	case "become":
		return described("user to run as on the host", def("text", member{"minLength", 1})), nil
	case "timeout":
		return object{
			{"description", `a Go duration such as "90s" or "2h"`},
			{"anyOf", []any{object{{"type", "string"}, {"pattern", durationPattern}}, def("ref")}},
		}, nil
	case "retries":
		return described("extra attempts after a failure (not after a lost connection)", def("int", member{"minimum", 0})), nil
	case "point_of_no_return":
		return described("once this step is done, a later failure leaves the run failed and resumable instead of running on_failure", def("bool")), nil
	case "when":
		term := `!?\s*` + strings.TrimSuffix(strings.TrimPrefix(varNameRE.String(), "^"), "$")
		return described("a var that must be true (true/yes/1); !name negates; && joins conditions that must all hold",
			def("text", member{"pattern", `^\s*` + term + `(\s*&&\s*` + term + `)*\s*$`})), nil
	}
	return nil, fmt.Errorf("plan schema: no schema for step key %q", key)
}

// kindSchema mirrors decodeSpec: a mapping of the kind's fields, nothing
// when no field is required (`pg_init:`), or the scalar shorthand of a
// ScalarSpec when no other field is required.
func kindSchema(k steps.Kind) object {
	spec := k.New()
	fields := steps.SchemaOf(spec)
	body := objectSchema("", fields)
	alts := []any{body}
	var required []string
	for _, f := range fields {
		if f.Required {
			required = append(required, f.Key)
		}
	}
	if len(required) == 0 {
		alts = append(alts, object{{"type", "null"}})
	}
	if ss, ok := spec.(steps.ScalarSpec); ok {
		key := ss.ScalarField()
		if len(required) == 0 || slices.Equal(required, []string{key}) {
			f := fieldByKey(fields, key)
			alts = append(alts, fieldSchema(steps.Field{
				Key:      key,
				Type:     f.Type,
				Doc:      fmt.Sprintf("shorthand for %s: {%s: VALUE}", k.Name, key),
				Enum:     f.Enum,
				Required: f.Required,
			}))
		}
	}
	if len(alts) == 1 {
		return described(k.Summary, body)
	}
	return object{{"description", k.Summary}, {"anyOf", alts}}
}

// objectSchema is a mapping of fields: a kind's body or a nested struct.
func objectSchema(doc string, fields []steps.Field) object {
	props := object{}
	var required []string
	for _, f := range fields {
		props = append(props, member{f.Key, fieldSchema(f)})
		if f.Required {
			required = append(required, f.Key)
		}
	}
	return object{}.with("description", doc).
		with("type", "object").
		with("properties", props).
		with("required", required).
		with("additionalProperties", false)
}

// fieldSchema mirrors specDecoder.value for one field.
func fieldSchema(f steps.Field) object {
	s := object{}.with("description", f.Doc)
	switch f.Type {
	case steps.TypeString:
		switch {
		case f.Enum != nil:
			s = s.with("anyOf", []any{object{{"enum", enumValues(f.Enum)}}, def("ref")})
		case f.Required:
			s = append(append(s, def("text")...), member{"minLength", 1})
		default:
			s = append(s, def("text")...)
		}
	case steps.TypeBool:
		s = append(s, def("bool")...)
	case steps.TypeInt:
		s = append(s, def("int")...)
	case steps.TypeStrings:
		s = s.with("type", "array").with("items", def("text"))
		if f.Required {
			s = s.with("minItems", 1)
		}
	case steps.TypeMap:
		s = s.with("type", "object").with("additionalProperties", def("text"))
		if f.Required {
			s = s.with("minProperties", 1)
		}
	case steps.TypeObject:
		return objectSchema(f.Doc, f.Fields)
	default:
		panic("plan: unexpected field type " + f.Type)
	}
	return s.with("default", defaultValue(f))
}

// enumValues lists the allowed values of an enum. The loader compares the
// text as written, so `persist: true` and `compress: 6` match "true" and
// "6": their JSON bool and number are allowed too.
func enumValues(enum []string) []any {
	out := make([]any, 0, 2*len(enum))
	for _, e := range enum {
		out = append(out, e)
	}
	for _, e := range enum {
		switch i, err := strconv.Atoi(e); {
		case e == "true" || e == "false":
			out = append(out, e == "true")
		case err == nil && strconv.Itoa(i) == e:
			out = append(out, i)
		}
	}
	return out
}

// defaultValue is a field's documented default as a JSON value of the
// field's type, or nil when it has none.
func defaultValue(f steps.Field) any {
	if f.Default == "" {
		return nil
	}
	switch f.Type {
	case steps.TypeInt:
		if i, err := strconv.Atoi(f.Default); err == nil {
			return i
		}
	case steps.TypeBool:
		if b, err := strconv.ParseBool(f.Default); err == nil {
			return b
		}
	case steps.TypeString:
		return f.Default
	}
	// A default that is prose ("the file's") documents rather than
	// fills in; the doc string already says it.
	return nil
}
