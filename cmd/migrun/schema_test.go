package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/migrun/migrun/steps"
)

const (
	schemaFile = "../../plans/plan.schema.json"
	// schemaLine is the first line of every shipped plan: it points
	// editors running the YAML language server at the schema.
	schemaLine = "# yaml-language-server: $schema=plan.schema.json"
)

// TestSchemaFileUpToDate: the committed schema is what `migrun schema`
// prints, so editors check plans against what this migrun accepts.
func TestSchemaFileUpToDate(t *testing.T) {
	code, out, errOut := cli(t, nil, "schema")
	if code != 0 {
		t.Fatalf("schema: exit %d: %s", code, errOut)
	}
	committed, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("%v; run `make schema`", err)
	}
	if !bytes.Equal(committed, []byte(out)) {
		t.Fatal("plans/plan.schema.json differs from what `migrun schema` prints: run `make schema`")
	}
	if code, _, _ := cli(t, nil, "schema", "extra"); code != 2 {
		t.Errorf("schema with an argument: exit %d, want 2", code)
	}
}

// compileSchema compiles the JSON Schema in file, asserting formats
// (date-time...) when formats is set, and returns it with its document.
func compileSchema(t *testing.T, file, name string, formats bool) (*jsonschema.Schema, map[string]any) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if formats {
		c.AssertFormat()
	}
	if err := c.AddResource(name, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(name)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return sch, doc.(map[string]any)
}

// TestShippedPlansMatchSchema: every shipped plan names the schema on its
// first line and validates against it, converted to JSON as an editor does.
func TestShippedPlansMatchSchema(t *testing.T) {
	sch, _ := compileSchema(t, schemaFile, "plan.schema.json", false)
	files, err := filepath.Glob("../../plans/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped plans found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if first, _, _ := strings.Cut(string(src), "\n"); first != schemaLine {
				t.Errorf("first line %q, want %q", first, schemaLine)
			}
			var v any
			if err := yaml.Unmarshal(src, &v); err != nil {
				t.Fatal(err)
			}
			data, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(inst); err != nil {
				t.Errorf("the schema rejects it: %v", err)
			}
		})
	}
}

// TestSchemaDocDrift: every field steps.SchemaOf reports for every kind is
// in `migrun doc KIND` with its required and enum, and the common step keys
// the schema lists are the ones doc names. (The schema's own fields are
// checked against steps.SchemaOf in plan/jsonschema_test.go.)
func TestSchemaDocDrift(t *testing.T) {
	code, out, errOut := cli(t, nil, "schema")
	if code != 0 {
		t.Fatalf("schema: exit %d: %s", code, errOut)
	}
	var root struct {
		Defs struct {
			Step struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"step"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal([]byte(out), &root); err != nil {
		t.Fatal(err)
	}
	var common []string
	for key := range root.Defs.Step.Properties {
		if _, isKind := steps.Builtin().Lookup(key); !isKind {
			common = append(common, key)
		}
	}
	for _, k := range steps.Builtin().Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			code, doc, _ := cli(t, nil, "doc", k.Name)
			if code != 0 {
				t.Fatalf("doc %s: exit %d", k.Name, code)
			}
			for _, key := range common {
				if !strings.Contains(commonLine(doc), key) {
					t.Errorf("doc does not name the common step key %s", key)
				}
			}
			checkDoc(t, k.Name, steps.SchemaOf(k.New()), doc, "  ")
		})
	}
}

// docBlock is the lines of doc after line that are indented deeper than
// indent: the block of the object line introduces.
func docBlock(doc, line, indent string) string {
	var b strings.Builder
	in := false
	for l := range strings.Lines(doc) {
		switch {
		case l == line:
			in = true
		case in && strings.HasPrefix(l, indent+" "):
			b.WriteString(l)
		case in:
			return b.String()
		}
	}
	return b.String()
}

// commonLine is doc's line listing the common step fields.
func commonLine(doc string) string {
	sc := bufio.NewScanner(strings.NewReader(doc))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Common step fields:") {
			return sc.Text()
		}
	}
	return ""
}

// checkDoc checks fields against doc, which prints each as
// "INDENT KEY: TYPE (notes)" over its doc line, nested fields 4 deeper.
func checkDoc(t *testing.T, path string, fields []steps.Field, doc, indent string) {
	t.Helper()
	for _, f := range fields {
		fpath := path + "." + f.Key
		line := ""
		for l := range strings.Lines(doc) {
			if strings.HasPrefix(l, indent+f.Key+": "+f.Type) {
				line = l
				break
			}
		}
		switch {
		case line == "":
			t.Errorf("%s: not in `migrun doc`", fpath)
		case f.Required != strings.Contains(line, "required"):
			t.Errorf("%s: doc line %q, required = %v", fpath, line, f.Required)
		case f.Enum != nil && !strings.Contains(line, "one of "+strings.Join(f.Enum, ", ")):
			t.Errorf("%s: doc line %q lacks its enum %v", fpath, line, f.Enum)
		case f.Doc != "" && !strings.Contains(doc, f.Doc):
			t.Errorf("%s: doc lacks %q", fpath, f.Doc)
		}

		if f.Type == steps.TypeObject && line != "" {
			// Only the object's own block: two objects may share key names
			// (source.host, publisher.host).
			checkDoc(t, fpath, f.Fields, docBlock(doc, line, indent), indent+"    ")
		}
	}
}
