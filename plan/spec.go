package plan

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps"
)

// specDecoder decodes one step's kind body into its Spec, driven by
// steps.SchemaOf so the struct tags are the only description of a kind.
type specDecoder struct {
	l    *loader
	step string // step id, for messages
	kind string
	// keys maps a field path relative to the spec ("to", "owner.name") to
	// its key node, so Validate's problems can point at their line.
	keys map[string]*yaml.Node
	// secretFields lists the fields that take secrets, for messages.
	secretFields []string
	ok           bool
}

// decodeSpec decodes value node v of kind key k. ok is false when any
// problem was reported.
func (l *loader) decodeSpec(kind steps.Kind, k, v *yaml.Node, step string) (spec steps.Spec, keys map[string]*yaml.Node, ok bool) {
	spec = kind.New()
	fields := steps.SchemaOf(spec)
	d := &specDecoder{l: l, step: step, kind: kind.Name, keys: map[string]*yaml.Node{}, ok: true}
	walkSchema(fields, kind.Name, func(path string, f steps.Field) {
		if f.SecretAllowed {
			d.secretFields = append(d.secretFields, path)
		}
	})
	rv := reflect.ValueOf(spec).Elem()
	v = deref(v)
	switch {
	case isNull(v):
		// `reboot:` with nothing after it: a kind whose fields are all
		// optional; otherwise the required check names what is missing.
		d.required(fields, nil, k, kind.Name)
	case v.Kind == yaml.ScalarNode:
		ss, isScalar := spec.(steps.ScalarSpec)
		if !isScalar {
			l.errorf(v, step, "%s: want a mapping of its fields, got %s", kind.Name, what(v))
			return spec, nil, false
		}
		f := fieldByKey(fields, ss.ScalarField())
		if f == nil || f.Type != steps.TypeString {
			panic(fmt.Sprintf("plan: kind %s: ScalarField %q is not a string field", kind.Name, ss.ScalarField()))
		}
		d.keys[f.Key] = v
		d.value(k, v, f, rv.FieldByIndex(f.Index), join(kind.Name, f.Key))
		d.required(fields, map[string]bool{f.Key: true}, k, kind.Name)
	default:
		d.object(k, v, fields, rv, kind.Name, "")
	}
	return spec, d.keys, d.ok
}

// object decodes mapping v (whose key node is k) into struct rv.
func (d *specDecoder) object(k, v *yaml.Node, fields []steps.Field, rv reflect.Value, path, rel string) {
	pairs, ok := d.l.mapping(v, path, d.step)
	if !ok {
		d.ok = false
		return
	}
	seen := map[string]bool{}
	for _, p := range pairs {
		f := fieldByKey(fields, p.key)
		if f == nil {
			keys := make([]string, len(fields))
			for i, f := range fields {
				keys[i] = f.Key
			}
			d.l.unknownKey(p, path, d.step, keys)
			d.ok = false
			continue
		}
		seen[f.Key] = true
		d.keys[join(rel, f.Key)] = p.k
		if f.Type == steps.TypeObject {
			d.object(p.k, p.v, f.Fields, rv.FieldByIndex(f.Index), join(path, f.Key), join(rel, f.Key))
			continue
		}
		d.value(p.k, p.v, f, rv.FieldByIndex(f.Index), join(path, f.Key))
	}
	d.required(fields, seen, k, path)
}

// required reports the required fields not in seen, at key node k.
func (d *specDecoder) required(fields []steps.Field, seen map[string]bool, k *yaml.Node, path string) {
	for _, f := range fields {
		if f.Required && !seen[f.Key] {
			d.l.errorf(k, d.step, "%s: missing required key %q", path, f.Key)
			d.ok = false
		}
	}
}

// value decodes a non-object field from v (key node k) into fv.
func (d *specDecoder) value(k, v *yaml.Node, f *steps.Field, fv reflect.Value, path string) {
	l := d.l
	ok := true
	switch f.Type {
	case steps.TypeString:
		var s string
		if s, ok = d.str(v, f, path); ok {
			if f.Enum != nil && !slices.Contains(f.Enum, s) {
				l.errorf(deref(v), d.step, "%s: %q is not one of %s%s", path, s, strings.Join(f.Enum, ", "), didYouMean(s, f.Enum))
				ok = false
			}
			if f.Required && s == "" {
				l.errorf(deref(v), d.step, "%s: must not be empty", path)
				ok = false
			}
			fv.SetString(s)
		}
	case steps.TypeBool:
		var b bool
		if b, ok = l.boolean(v, path, d.step); ok {
			fv.SetBool(b)
		}
	case steps.TypeInt:
		var i int
		if i, ok = l.integer(v, path, d.step); ok {
			fv.SetInt(int64(i))
		}
	case steps.TypeStrings:
		var items []*yaml.Node
		if items, ok = l.sequence(v, path, d.step); ok {
			list := make([]string, 0, len(items))
			for i, item := range items {
				s, itemOK := d.str(item, f, fmt.Sprintf("%s[%d]", path, i))
				ok = ok && itemOK
				list = append(list, s)
			}
			if f.Required && len(list) == 0 {
				l.errorf(deref(v), d.step, "%s: must not be empty", path)
				ok = false
			}
			fv.Set(reflect.ValueOf(list))
		}
	case steps.TypeMap:
		var pairs []pair
		if pairs, ok = l.mapping(v, path, d.step); ok {
			m := make(map[string]string, len(pairs))
			for _, p := range pairs {
				// Keys are names (environment variables, settings):
				// taken literally, never interpolated.
				s, valOK := d.str(p.v, f, join(path, p.key))
				ok = ok && valOK
				m[p.key] = s
			}
			if f.Required && len(m) == 0 {
				l.errorf(deref(v), d.step, "%s: must not be empty", path)
				ok = false
			}
			fv.Set(reflect.ValueOf(m))
		}
	default:
		panic("plan: unexpected field type " + f.Type)
	}
	d.ok = d.ok && ok
}

// str decodes and interpolates one string of field f, refusing secrets
// unless the field takes them.
func (d *specDecoder) str(v *yaml.Node, f *steps.Field, path string) (string, bool) {
	s, ok := d.l.expand(v, path, d.step, d.l.refs.lookup)
	if f.SecretAllowed {
		return s, ok
	}
	for _, name := range secret.Names(s) {
		d.l.errorf(deref(v), d.step, "secret %q in %s would be visible in argv/ps; %s", name, path, d.secretHint())
		ok = false
	}
	return s, ok
}

func (d *specDecoder) secretHint() string {
	if len(d.secretFields) == 0 {
		return d.kind + " has no field that takes secrets"
	}
	return "only " + strings.Join(d.secretFields, ", ") + " can take secrets (they never reach a command line)"
}

func fieldByKey(fields []steps.Field, key string) *steps.Field {
	for i := range fields {
		if fields[i].Key == key {
			return &fields[i]
		}
	}
	return nil
}

// walkSchema calls fn for every field, depth first, with its dotted path.
func walkSchema(fields []steps.Field, path string, fn func(path string, f steps.Field)) {
	for _, f := range fields {
		fn(join(path, f.Key), f)
		walkSchema(f.Fields, join(path, f.Key), fn)
	}
}

// specStrings calls fn for every string a decoded spec holds (list items
// and map values included), with the path of the field relative to the spec.
func specStrings(spec steps.Spec, fn func(rel, s string)) {
	var walk func(fields []steps.Field, v reflect.Value, path string)
	walk = func(fields []steps.Field, v reflect.Value, path string) {
		for _, f := range fields {
			fv := v.FieldByIndex(f.Index)
			rel := join(path, f.Key)
			switch f.Type {
			case steps.TypeString:
				fn(rel, fv.String())
			case steps.TypeStrings:
				for _, s := range fv.Interface().([]string) {
					fn(rel, s)
				}
			case steps.TypeMap:
				m := fv.Interface().(map[string]string)
				for _, k := range slices.Sorted(maps.Keys(m)) {
					fn(rel, m[k])
				}
			case steps.TypeObject:
				walk(f.Fields, fv, rel)
			}
		}
	}
	walk(steps.SchemaOf(spec), reflect.ValueOf(spec).Elem(), "")
}

// canonical renders a decoded spec as plain data keyed by yaml keys, for
// digests. Zero values are left out, so a kind that gains an optional field
// keeps the digests of existing plans (and of journals being resumed).
func canonical(spec steps.Spec) map[string]any {
	var walk func(fields []steps.Field, v reflect.Value) map[string]any
	walk = func(fields []steps.Field, v reflect.Value) map[string]any {
		out := map[string]any{}
		for _, f := range fields {
			fv := v.FieldByIndex(f.Index)
			switch {
			case f.Type == steps.TypeObject:
				if m := walk(f.Fields, fv); len(m) > 0 {
					out[f.Key] = m
				}
			case f.Type == steps.TypeStrings || f.Type == steps.TypeMap:
				if fv.Len() > 0 {
					out[f.Key] = fv.Interface()
				}
			case !fv.IsZero():
				out[f.Key] = fv.Interface()
			}
		}
		return out
	}
	return walk(steps.SchemaOf(spec), reflect.ValueOf(spec).Elem())
}
