package steps

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

// specMethods gives test structs the Spec methods; being unexported and
// untagged, it must not show up in their schema.
type specMethods struct{}

func (specMethods) Validate() []Problem                                  { return nil }
func (specMethods) Hosts(h string) []string                              { return []string{h} }
func (specMethods) Check(context.Context, *Runtime) (Check, error)       { return Check{}, nil }
func (specMethods) Describe(context.Context, *Runtime) ([]Action, error) { return nil, nil }
func (specMethods) Apply(context.Context, *Runtime) (Outcome, error)     { return Outcome{}, nil }

type schemaOwner struct {
	Name  string `yaml:"name" doc:"user name" required:"true"`
	Group string `yaml:"group,omitempty"`
}

type schemaCommon struct {
	Dir string `yaml:"dir" doc:"working directory"`
}

type schemaSpec struct {
	specMethods
	schemaCommon `yaml:",inline"`
	Argv         []string          `yaml:"argv" doc:"the command" required:"true"`
	Stdin        string            `yaml:"stdin" doc:"fed to stdin" secret:"allowed"`
	Env          map[string]string `yaml:"env" secret:"allowed"`
	State        string            `yaml:"state" enum:"started|stopped" default:"started"`
	Enabled      bool              `yaml:"enabled" required:"false"`
	Retries      int               `yaml:"tries"`
	Owner        schemaOwner       `yaml:"owner"`
	Skipped      string            `yaml:"-"`
	cache        string
}

func TestSchemaOf(t *testing.T) {
	want := []Field{
		{Key: "dir", Type: TypeString, Doc: "working directory", Index: []int{1, 0}},
		{Key: "argv", Type: TypeStrings, Doc: "the command", Required: true, Index: []int{2}},
		{Key: "stdin", Type: TypeString, Doc: "fed to stdin", SecretAllowed: true, Index: []int{3}},
		{Key: "env", Type: TypeMap, SecretAllowed: true, Index: []int{4}},
		{Key: "state", Type: TypeString, Enum: []string{"started", "stopped"}, Default: "started", Index: []int{5}},
		{Key: "enabled", Type: TypeBool, Index: []int{6}},
		{Key: "tries", Type: TypeInt, Index: []int{7}},
		{Key: "owner", Type: TypeObject, Index: []int{8}, Fields: []Field{
			{Key: "name", Type: TypeString, Doc: "user name", Required: true, Index: []int{0}},
			{Key: "group", Type: TypeString, Index: []int{1}},
		}},
	}
	got := SchemaOf((*schemaSpec)(nil))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SchemaOf:\n got %+v\nwant %+v", got, want)
	}

	// Index must reach the field it names.
	v := reflect.ValueOf(&schemaSpec{}).Elem()
	v.FieldByIndex(got[0].Index).SetString("/srv")
	v.FieldByIndex(got[7].Index).FieldByIndex(got[7].Fields[1].Index).SetString("wheel")
	s := v.Interface().(schemaSpec)
	if s.Dir != "/srv" || s.Owner.Group != "wheel" {
		t.Errorf("Index paths set the wrong fields: %+v", s)
	}
}

type (
	untagged struct {
		specMethods
		Name string
	}
	floatField struct {
		specMethods
		Ratio float64 `yaml:"ratio"`
	}
	dupKey struct {
		specMethods
		schemaCommon `yaml:",inline"`
		Dir          string `yaml:"dir"`
	}
	badRequired struct {
		specMethods
		Name string `yaml:"name" required:"yes"`
	}
	enumOnInt struct {
		specMethods
		N int `yaml:"n" enum:"1|2"`
	}
	secretOnBool struct {
		specMethods
		B bool `yaml:"b" secret:"allowed"`
	}
	badSecretTag struct {
		specMethods
		S string `yaml:"s" secret:"yes"`
	}
	defaultNotInEnum struct {
		specMethods
		S string `yaml:"s" enum:"a|b" default:"c"`
	}
	emptyEnum struct {
		specMethods
		S string `yaml:"s" enum:"a||b"`
	}
	badOption struct {
		specMethods
		S string `yaml:"s,flow"`
	}
	nestedUntagged struct {
		specMethods
		O struct{ X string } `yaml:"o"`
	}
	pointerField struct {
		specMethods
		P *string `yaml:"p"`
	}
	notPointer struct{ specMethods }
)

func TestSchemaOfPanics(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"untagged", (*untagged)(nil), "untagged.Name has no yaml tag"},
		{"float", (*floatField)(nil), "unsupported type float64"},
		{"duplicate", (*dupKey)(nil), `duplicate yaml key "dir"`},
		{"required", (*badRequired)(nil), `required tag must be "true" or "false"`},
		{"enum on int", (*enumOnInt)(nil), "enum on a int field"},
		{"secret on bool", (*secretOnBool)(nil), `secret:"allowed" on a bool field`},
		{"secret tag", (*badSecretTag)(nil), `secret tag must be "allowed"`},
		{"default", (*defaultNotInEnum)(nil), `default "c" is not in enum`},
		{"empty enum", (*emptyEnum)(nil), "empty value in enum"},
		{"option", (*badOption)(nil), "malformed yaml tag"},
		{"nested", (*nestedUntagged)(nil), "nestedUntagged.O.X has no yaml tag"},
		{"pointer", (*pointerField)(nil), "unsupported type *string"},
		{"not a pointer", notPointer{}, "must be a pointer to a struct"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if !strings.Contains(msg, tt.want) {
					t.Errorf("panic = %v, want it to mention %q", r, tt.want)
				}
			}()
			SchemaOf(tt.spec)
		})
	}
}

// TestBuiltinSchemas holds every registered kind to the tag conventions.
func TestBuiltinSchemas(t *testing.T) {
	kinds := Builtin().Kinds()
	if len(kinds) == 0 {
		t.Fatal("no builtin kinds")
	}
	for _, k := range kinds {
		if k.Name == "" || k.New == nil || k.Summary == "" {
			t.Errorf("kind %+v: Name, Summary and New are required", k)
			continue
		}
		t.Run(k.Name, func(t *testing.T) {
			spec := k.New()
			fields := SchemaOf(spec) // panics on a convention breach
			if ss, ok := spec.(ScalarSpec); ok {
				key := ss.ScalarField()
				found := false
				for _, f := range fields {
					found = found || f.Key == key && f.Type == TypeString
				}
				if !found {
					// The plan decoder stores the shorthand scalar there.
					t.Errorf("ScalarField %q is not a string field of %s", key, k.Name)
				}
			}
			var undocumented []string
			walkFields(fields, "", func(path string, f Field) {
				if f.Doc == "" {
					undocumented = append(undocumented, path)
				}
			})
			if len(undocumented) > 0 {
				t.Errorf("fields without doc (migrun doc shows them bare): %v", undocumented)
			}
		})
	}
}

func walkFields(fields []Field, prefix string, fn func(path string, f Field)) {
	for _, f := range fields {
		fn(prefix+f.Key, f)
		walkFields(f.Fields, prefix+f.Key+".", fn)
	}
}
