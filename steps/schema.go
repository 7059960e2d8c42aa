package steps

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Field types as SchemaOf names them. They are the words `migrun doc`
// prints, so they read as English rather than as Go.
const (
	TypeString  = "string"
	TypeBool    = "bool"
	TypeInt     = "int"
	TypeStrings = "list of strings"
	TypeMap     = "map of strings"
	TypeObject  = "object"
)

// Field describes one key of a step kind, read from the struct tags of its
// Spec (see Spec for the tags). The plan decoder, `migrun doc` and the JSON
// Schema are all built from it, so the tags are the single source of truth.
type Field struct {
	Key           string   // yaml key
	Type          string   // one of the Type* constants
	Doc           string   // one line
	Enum          []string // allowed values of a string; nil: any
	Default       string   // documented default, "" if none
	Required      bool     // the key must be present
	SecretAllowed bool     // strings may hold ${secret} references
	Fields        []Field  // the keys of an object, in struct order
	// Index is the reflect index path of the field within the struct that
	// holds it (the spec, or the enclosing object): more than one element
	// when the field comes from an embedded struct tagged `yaml:",inline"`.
	Index []int
}

// SchemaOf returns the fields of spec, in struct order. spec must be a
// pointer to a struct (a nil pointer of the right type will do).
//
// It panics when the struct breaks the tag conventions: an exported field
// without a yaml tag, an unsupported type, a duplicate key, a malformed
// tag. Those are programmer errors that a test over every registered kind
// catches, so panicking beats threading an error through every caller.
func SchemaOf(spec Spec) []Field {
	t := reflect.TypeOf(spec)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("steps.SchemaOf: spec must be a pointer to a struct, got %v", t))
	}
	return structFields(t.Elem(), nil, t.Elem().Name())
}

// structFields lists the fields of struct type t. prefix is the index path
// of an inline struct being flattened; where names the type for panics.
func structFields(t reflect.Type, prefix []int, where string) []Field {
	var out []Field
	seen := map[string]bool{}
	add := func(f Field) {
		if seen[f.Key] {
			panic(fmt.Sprintf("steps.SchemaOf: %s: duplicate yaml key %q", where, f.Key))
		}
		seen[f.Key] = true
		out = append(out, f)
	}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		index := append(append([]int(nil), prefix...), i)
		name, opts, tagged := parseYAMLTag(sf)
		if !sf.IsExported() {
			// Unexported fields are the kind's own state; an embedded
			// unexported struct may still be inlined explicitly.
			if !(sf.Anonymous && opts == "inline") {
				continue
			}
		}
		at := where + "." + sf.Name
		if !tagged {
			panic(fmt.Sprintf("steps.SchemaOf: %s has no yaml tag", at))
		}
		if name == "-" && opts == "" {
			continue // explicitly not part of the plan
		}
		if opts == "inline" {
			if name != "" || sf.Type.Kind() != reflect.Struct {
				panic(fmt.Sprintf("steps.SchemaOf: %s: inline needs an unnamed struct field", at))
			}
			for _, f := range structFields(sf.Type, index, at) {
				add(f)
			}
			continue
		}
		if name == "" || opts != "" && opts != "omitempty" {
			panic(fmt.Sprintf("steps.SchemaOf: %s: malformed yaml tag %q", at, sf.Tag.Get("yaml")))
		}
		add(field(sf, name, index, at))
	}
	return out
}

func parseYAMLTag(sf reflect.StructField) (name, opts string, ok bool) {
	tag, ok := sf.Tag.Lookup("yaml")
	name, opts, _ = strings.Cut(tag, ",")
	return name, opts, ok
}

// field builds the Field for one tagged struct field.
func field(sf reflect.StructField, key string, index []int, at string) Field {
	f := Field{
		Key:     key,
		Doc:     sf.Tag.Get("doc"),
		Default: sf.Tag.Get("default"),
		Index:   index,
	}
	switch sf.Type {
	case reflect.TypeFor[string]():
		f.Type = TypeString
	case reflect.TypeFor[bool]():
		f.Type = TypeBool
	case reflect.TypeFor[int]():
		f.Type = TypeInt
	case reflect.TypeFor[[]string]():
		f.Type = TypeStrings
	case reflect.TypeFor[map[string]string]():
		f.Type = TypeMap
	default:
		if sf.Type.Kind() != reflect.Struct {
			panic(fmt.Sprintf("steps.SchemaOf: %s: unsupported type %v (want string, bool, int, []string, map[string]string or a struct)", at, sf.Type))
		}
		f.Type = TypeObject
		// Index of nested fields is relative to the nested struct, so the
		// decoder can descend one value at a time.
		f.Fields = structFields(sf.Type, nil, at)
	}

	switch v, ok := sf.Tag.Lookup("required"); {
	case !ok:
	case v == "true":
		f.Required = true
	case v != "false":
		panic(fmt.Sprintf("steps.SchemaOf: %s: required tag must be \"true\" or \"false\", got %q", at, v))
	}

	if v, ok := sf.Tag.Lookup("enum"); ok {
		if f.Type != TypeString {
			panic(fmt.Sprintf("steps.SchemaOf: %s: enum on a %s field", at, f.Type))
		}
		f.Enum = strings.Split(v, "|")
		for _, e := range f.Enum {
			if e == "" {
				panic(fmt.Sprintf("steps.SchemaOf: %s: empty value in enum %q", at, v))
			}
		}
		if f.Default != "" && !slices.Contains(f.Enum, f.Default) {
			panic(fmt.Sprintf("steps.SchemaOf: %s: default %q is not in enum %q", at, f.Default, v))
		}
	}

	if v, ok := sf.Tag.Lookup("secret"); ok {
		if v != "allowed" {
			panic(fmt.Sprintf("steps.SchemaOf: %s: secret tag must be \"allowed\", got %q", at, v))
		}
		switch f.Type {
		case TypeString, TypeStrings, TypeMap:
		default:
			panic(fmt.Sprintf("steps.SchemaOf: %s: secret:\"allowed\" on a %s field", at, f.Type))
		}
		f.SecretAllowed = true
	}
	return f
}
