package inventory

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// graph is an Ansible inventory: groups of hosts and of groups, with vars
// at every level. "all" holds every group; "ungrouped" the hosts of none.
type graph struct {
	groups map[string]*group
	hosts  map[string]*host
	order  []string // hosts, in the order the file names them first
}

type group struct {
	name     string
	vars     map[string]string // from the inventory file
	dirVars  map[string]string // from group_vars/NAME
	hosts    []string
	children []string
}

type host struct {
	name    string
	vars    map[string]string // from the inventory file
	dirVars map[string]string // from host_vars/NAME
}

func newGraph() *graph {
	g := &graph{groups: map[string]*group{}, hosts: map[string]*host{}}
	g.group("all")
	g.group("ungrouped")
	return g
}

func (g *graph) group(name string) *group {
	gr, ok := g.groups[name]
	if !ok {
		gr = &group{name: name, vars: map[string]string{}}
		g.groups[name] = gr
		if name != "all" {
			g.groups["all"].children = append(g.groups["all"].children, name)
		}
	}
	return gr
}

// addHost puts host name in group gname, with vars on top of those it has.
func (g *graph) addHost(gname, name string, vars map[string]string) {
	h, ok := g.hosts[name]
	if !ok {
		h = &host{name: name, vars: map[string]string{}}
		g.hosts[name] = h
		g.order = append(g.order, name)
	}
	for k, v := range vars {
		h.vars[k] = v
	}
	gr := g.group(gname)
	if !slices.Contains(gr.hosts, name) {
		gr.hosts = append(gr.hosts, name)
	}
}

func (g *graph) addChild(parent, child string) {
	p := g.group(parent)
	g.group(child)
	if !slices.Contains(p.children, child) {
		p.children = append(p.children, child)
	}
}

// depths is each group's depth below all (the longest path, as Ansible
// counts it): deeper groups' vars win over their parents'.
func (g *graph) depths() (map[string]int, error) {
	depth := map[string]int{}
	var walk func(name string, d int, path []string) error
	walk = func(name string, d int, path []string) error {
		if slices.Contains(path, name) {
			return fmt.Errorf("groups %s contain each other", strings.Join(append(path, name), " -> "))
		}
		if cur, seen := depth[name]; seen && cur >= d {
			return nil
		}
		depth[name] = d
		for _, c := range g.groups[name].children {
			if err := walk(c, d+1, append(path, name)); err != nil {
				return err
			}
		}
		return nil
	}
	return depth, walk("all", 0, nil)
}

// groupsOf lists the groups host is in, directly or through children,
// ordered as Ansible merges their vars: by depth, then by name.
func (g *graph) groupsOf(hostName string, depth map[string]int) []string {
	var in []string
	for name, gr := range g.groups {
		if g.holds(gr, hostName, map[string]bool{}) {
			in = append(in, name)
		}
	}
	slices.SortFunc(in, func(a, b string) int {
		if depth[a] != depth[b] {
			return depth[a] - depth[b]
		}
		return strings.Compare(a, b)
	})
	return in
}

func (g *graph) holds(gr *group, hostName string, seen map[string]bool) bool {
	if seen[gr.name] {
		return false
	}
	seen[gr.name] = true
	if gr.name == "all" || slices.Contains(gr.hosts, hostName) {
		return true
	}
	for _, c := range gr.children {
		if g.holds(g.groups[c], hostName, seen) {
			return true
		}
	}
	return false
}

// sets makes a set of each host the limit keeps, its vars merged in
// Ansible's order of precedence: the inventory file's group vars (all
// first, deeper groups over their parents, then by name), group_vars/
// in the same order, the file's host vars, host_vars/.
func (g *graph) sets(limit []string) ([]Set, error) {
	depth, err := g.depths()
	if err != nil {
		return nil, err
	}
	keep := func(string) bool { return true }
	if len(limit) > 0 {
		for _, l := range limit {
			if g.groups[l] == nil && g.hosts[l] == nil {
				return nil, fmt.Errorf("--limit %s: no such group or host in the inventory", l)
			}
		}
		keep = func(h string) bool {
			for _, l := range limit {
				if l == h || g.groups[l] != nil && g.holds(g.groups[l], h, map[string]bool{}) {
					return true
				}
			}
			return false
		}
	}
	var sets []Set
	for _, name := range g.order {
		if !keep(name) {
			continue
		}
		if !setNameRE.MatchString(name) {
			return nil, fmt.Errorf("host %q cannot name a set ([A-Za-z0-9._-])", name)
		}
		groups := g.groupsOf(name, depth)
		vars := map[string]string{}
		for _, gn := range groups {
			for k, v := range g.groups[gn].vars {
				vars[k] = v
			}
		}
		for _, gn := range groups {
			for k, v := range g.groups[gn].dirVars {
				vars[k] = v
			}
		}
		h := g.hosts[name]
		for _, m := range []map[string]string{h.vars, h.dirVars} {
			for k, v := range m {
				vars[k] = v
			}
		}
		addr := vars["ansible_host"]
		if addr == "" {
			addr = name
		}
		sets = append(sets, Set{Name: name, Vars: vars, Address: addr})
	}
	if len(sets) == 0 {
		return nil, errors.New("no host to run the plan for")
	}
	return sets, nil
}

// readVarDirs reads group_vars/ and host_vars/ beside the inventory file:
// NAME, NAME.yml, NAME.yaml or NAME.json, or a directory NAME/ of such
// files, each a YAML mapping.
func (g *graph) readVarDirs(inventoryPath string) error {
	base := filepath.Dir(inventoryPath)
	for name, gr := range g.groups {
		vars, err := readVarFiles(filepath.Join(base, "group_vars", name))
		if err != nil {
			return err
		}
		gr.dirVars = vars
	}
	for name, h := range g.hosts {
		vars, err := readVarFiles(filepath.Join(base, "host_vars", name))
		if err != nil {
			return err
		}
		h.dirVars = vars
	}
	return nil
}

func readVarFiles(stem string) (map[string]string, error) {
	var files []string
	if fi, err := os.Stat(stem); err == nil && fi.IsDir() {
		entries, err := os.ReadDir(stem)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(stem, e.Name()))
			}
		}
	} else {
		for _, ext := range []string{"", ".yml", ".yaml", ".json"} {
			if fi, err := os.Stat(stem + ext); err == nil && !fi.IsDir() {
				files = append(files, stem+ext)
			}
		}
	}
	if len(files) == 0 {
		return nil, nil
	}
	vars := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var n yaml.Node
		if err := yaml.Unmarshal(data, &n); err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		if len(n.Content) == 0 {
			continue
		}
		m, err := yamlVars(f, n.Content[0])
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			vars[k] = v
		}
	}
	return vars, nil
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// mapping is n's key and value nodes, none for an empty value (null), or
// an error naming what was wanted.
func mapping(file string, n *yaml.Node, want string) ([]*yaml.Node, error) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want %s", file, n.Line, want)
	}
	return n.Content, nil
}

// yamlVars reads a YAML mapping of variables. Scalars are taken as their
// text; lists and mappings as JSON (a plan var is a string).
func yamlVars(file string, n *yaml.Node) (map[string]string, error) {
	kv, err := mapping(file, n, "a mapping of variables")
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := kv[i].Value, kv[i+1]
		if v.Kind == yaml.ScalarNode {
			if !isNull(v) {
				vars[k] = v.Value
			}
			continue
		}
		var val any
		if err := v.Decode(&val); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %v", file, v.Line, k, err)
		}
		b, err := json.Marshal(val)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %v", file, v.Line, k, err)
		}
		vars[k] = string(b)
	}
	return vars, nil
}

// parseAnsibleYAML reads a YAML inventory: groups at the top (all, or
// others, which all holds), each with hosts, vars and children.
func parseAnsibleYAML(file string, root *yaml.Node) (*graph, error) {
	g := newGraph()
	var walk func(name string, n *yaml.Node) error
	walk = func(name string, n *yaml.Node) error {
		g.group(name)
		keys, err := mapping(file, n, "group "+name+"'s hosts, vars or children")
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(keys); i += 2 {
			key, v := keys[i], keys[i+1]
			switch key.Value {
			case "hosts":
				hosts, err := mapping(file, v, name+".hosts as a mapping of host names")
				if err != nil {
					return err
				}
				for j := 0; j+1 < len(hosts); j += 2 {
					vars, err := yamlVars(file, hosts[j+1])
					if err != nil {
						return err
					}
					names, err := expandHostPattern(hosts[j].Value)
					if err != nil {
						return fmt.Errorf("%s:%d: %v", file, hosts[j].Line, err)
					}
					for _, h := range names {
						g.addHost(name, h, vars)
					}
				}
			case "vars":
				vars, err := yamlVars(file, v)
				if err != nil {
					return err
				}
				for k, val := range vars {
					g.groups[name].vars[k] = val
				}
			case "children":
				children, err := mapping(file, v, name+".children as a mapping of groups")
				if err != nil {
					return err
				}
				for j := 0; j+1 < len(children); j += 2 {
					child := children[j].Value
					g.addChild(name, child)
					if err := walk(child, children[j+1]); err != nil {
						return err
					}
				}
			default:
				return fmt.Errorf("%s:%d: group %s: unknown key %q (want hosts, vars or children)", file, key.Line, name, key.Value)
			}
		}
		return nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if err := walk(root.Content[i].Value, root.Content[i+1]); err != nil {
			return nil, err
		}
	}
	g.ungroup()
	return g, nil
}

// ungroup puts the hosts of no group but all into ungrouped.
func (g *graph) ungroup() {
	for _, h := range g.order {
		in := false
		for name, gr := range g.groups {
			if name != "all" && name != "ungrouped" && slices.Contains(gr.hosts, h) {
				in = true
				break
			}
		}
		if !in {
			g.addHost("ungrouped", h, nil)
		}
	}
}

// parseAnsibleINI reads an INI inventory: [group] sections of host lines
// (NAME key=value ...), [group:vars] of key=value lines, [group:children]
// of group names; host lines before any section are ungrouped.
func parseAnsibleINI(file string, data []byte) (*graph, error) {
	g := newGraph()
	section, kind := "ungrouped", "hosts"
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("%s:%d: %q: a section header ends with ]", file, n, line)
			}
			name := line[1 : len(line)-1]
			section, kind = name, "hosts"
			if base, suffix, ok := strings.Cut(name, ":"); ok {
				if suffix != "vars" && suffix != "children" {
					return nil, fmt.Errorf("%s:%d: [%s]: a section is [GROUP], [GROUP:vars] or [GROUP:children]", file, n, name)
				}
				section, kind = base, suffix
			}
			g.group(section)
			continue
		}
		fields, err := splitINI(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, n, err)
		}
		switch kind {
		case "children":
			g.addChild(section, fields[0])
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("%s:%d: [%s:vars]: want key=value, got %q", file, n, section, line)
			}
			g.groups[section].vars[strings.TrimSpace(k)] = unquote(strings.TrimSpace(v))
		default:
			vars := map[string]string{}
			for _, f := range fields[1:] {
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					return nil, fmt.Errorf("%s:%d: host %s: want key=value, got %q", file, n, fields[0], f)
				}
				vars[k] = unquote(v)
			}
			names, err := expandHostPattern(fields[0])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", file, n, err)
			}
			for _, h := range names {
				g.addHost(section, h, vars)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	g.ungroup()
	return g, nil
}

// splitINI splits a host line at blanks outside quotes; a # outside quotes
// after a blank starts a comment.
func splitINI(line string) ([]string, error) {
	var fields []string
	var cur strings.Builder
	var quote rune
	blank := true
	for _, r := range line {
		switch {
		case quote != 0:
			cur.WriteRune(r)
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
			cur.WriteRune(r)
		case r == ' ' || r == '\t':
			if cur.Len() > 0 {
				fields = append(fields, cur.String())
				cur.Reset()
			}
			blank = true
			continue
		case r == '#' && blank:
			if cur.Len() > 0 {
				fields = append(fields, cur.String())
			}
			return fields, nil
		default:
			cur.WriteRune(r)
		}
		blank = false
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed %c quote", quote)
	}
	if cur.Len() > 0 {
		fields = append(fields, cur.String())
	}
	return fields, nil
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// expandHostPattern expands Ansible's host ranges: db[01:03].example.com
// is db01, db02 and db03; [a:c] letters; [1:9:2] a step.
func expandHostPattern(p string) ([]string, error) {
	open := strings.IndexByte(p, '[')
	if open < 0 {
		return []string{p}, nil
	}
	end := strings.IndexByte(p[open:], ']')
	if end < 0 {
		return nil, fmt.Errorf("host pattern %q: [ without ]", p)
	}
	end += open
	parts := strings.Split(p[open+1:end], ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("host pattern %q: a range is [START:END] or [START:END:STEP]", p)
	}
	step := 1
	if len(parts) == 3 {
		var err error
		if step, err = strconv.Atoi(parts[2]); err != nil || step < 1 {
			return nil, fmt.Errorf("host pattern %q: bad step %q", p, parts[2])
		}
	}
	var items []string
	if a, errA := strconv.Atoi(parts[0]); errA == nil {
		b, errB := strconv.Atoi(parts[1])
		if errB != nil || b < a {
			return nil, fmt.Errorf("host pattern %q: bad range", p)
		}
		width := 0
		if len(parts[0]) > 1 && parts[0][0] == '0' {
			width = len(parts[0])
		}
		for i := a; i <= b; i += step {
			items = append(items, fmt.Sprintf("%0*d", width, i))
		}
	} else if len(parts[0]) == 1 && len(parts[1]) == 1 && parts[0] <= parts[1] {
		for c := parts[0][0]; c <= parts[1][0]; c += byte(step) {
			items = append(items, string(c))
		}
	} else {
		return nil, fmt.Errorf("host pattern %q: bad range", p)
	}
	var out []string
	for _, it := range items {
		rest, err := expandHostPattern(p[end+1:])
		if err != nil {
			return nil, err
		}
		for _, r := range rest {
			out = append(out, p[:open]+it+r)
		}
	}
	return out, nil
}
