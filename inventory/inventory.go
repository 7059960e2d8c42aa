// Package inventory reads the sets of var values one plan is applied with
// across a fleet (apply --inventory): one set per Manager/database pair,
// each its own run with its own journal and lock. Two formats are read:
// migrun's own (a YAML file with `sets:`) and Ansible inventories, INI or
// YAML, with their group_vars/ and host_vars/ directories, which
// administrators already keep: there each host is a set and its variables,
// merged as Ansible merges them, are the set's vars.
package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Set is one run of the plan: its name (the journal's suffix) and vars.
type Set struct {
	Name string
	Vars map[string]string
	// Address is an Ansible host's ansible_host, else its name; "" in a
	// migrun inventory.
	Address string
}

// Inventory is the sets of a file, in its order.
type Inventory struct {
	File string
	// Ansible is true for an Ansible inventory, whose hosts carry every
	// variable the team keeps, not only the plan's: vars the plan does not
	// declare are then left out instead of refused.
	Ansible bool
	Sets    []Set
}

// setNameRE is what a set's name may be: it names a journal (and, in a
// state directory, its file).
var setNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Load reads the inventory at path: migrun's format when its YAML has
// `sets:` at the top, else an Ansible inventory (YAML, or INI when the file
// is not a YAML mapping). limit keeps the sets of these names and, in an
// Ansible inventory, the hosts of these groups (none: every set).
func Load(path string, limit []string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	var root yaml.Node
	yamlErr := yaml.Unmarshal(data, &root)
	if yamlErr == nil && len(root.Content) == 1 && root.Content[0].Kind == yaml.MappingNode && hasKey(root.Content[0], "sets") {
		inv, err := loadMigrun(path, root.Content[0])
		if err != nil || len(limit) == 0 {
			return inv, err
		}
		return inv.limited(limit)
	}
	var g *graph
	if yamlErr == nil && len(root.Content) == 1 && root.Content[0].Kind == yaml.MappingNode {
		g, err = parseAnsibleYAML(path, root.Content[0])
	} else {
		g, err = parseAnsibleINI(path, data)
	}
	if err != nil {
		return nil, err
	}
	if err := g.readVarDirs(path); err != nil {
		return nil, err
	}
	sets, err := g.sets(limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Inventory{File: path, Ansible: true, Sets: sets}, nil
}

// limited keeps the sets named in limit, in the inventory's order.
func (inv *Inventory) limited(limit []string) (*Inventory, error) {
	keep := map[string]bool{}
	for _, l := range limit {
		keep[l] = true
	}
	var sets []Set
	for _, s := range inv.Sets {
		if keep[s.Name] {
			sets = append(sets, s)
			delete(keep, s.Name)
		}
	}
	for _, l := range limit {
		if keep[l] {
			return nil, fmt.Errorf("%s: --limit %s: no such set", inv.File, l)
		}
	}
	inv.Sets = sets
	return inv, nil
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// migrunFile is migrun's inventory format.
type migrunFile struct {
	Version int               `yaml:"version"`
	Vars    map[string]string `yaml:"vars"`
	Sets    []struct {
		Name string            `yaml:"name"`
		Vars map[string]string `yaml:"vars"`
		Line int               `yaml:"-"`
	} `yaml:"sets"`
}

func loadMigrun(path string, n *yaml.Node) (*Inventory, error) {
	var f migrunFile
	dec := yaml.NewDecoder(bytes.NewReader(mustEncode(n)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%s: version: want 1, got %d", path, f.Version)
	}
	setNodes := valueOf(n, "sets")
	inv := &Inventory{File: path}
	seen := map[string]int{}
	var errs []error
	for i, s := range f.Sets {
		line := 0
		if setNodes != nil && i < len(setNodes.Content) {
			line = setNodes.Content[i].Line
		}
		switch prev, dup := seen[s.Name]; {
		case !setNameRE.MatchString(s.Name):
			errs = append(errs, fmt.Errorf("%s:%d: sets[%d].name: %q is not a set name ([A-Za-z0-9._-], not starting with . - or _)", path, line, i, s.Name))
			continue
		case dup:
			errs = append(errs, fmt.Errorf("%s:%d: sets[%d].name: %q is already the name of the set at line %d", path, line, i, s.Name, prev))
			continue
		}
		seen[s.Name] = line
		vars := map[string]string{}
		for k, v := range f.Vars {
			vars[k] = v
		}
		for k, v := range s.Vars {
			vars[k] = v
		}
		inv.Sets = append(inv.Sets, Set{Name: s.Name, Vars: vars})
	}
	if len(inv.Sets) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%s: sets: no set to run", path))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return inv, nil
}

func mustEncode(n *yaml.Node) []byte {
	b, err := yaml.Marshal(n)
	if err != nil {
		panic(err) // a node decoded from YAML encodes
	}
	return b
}

func valueOf(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
