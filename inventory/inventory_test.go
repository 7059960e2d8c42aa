package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// write lays out files (path -> content) in a temporary directory and
// returns it.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// render prints sets one per line: name address k=v,k=v (sorted keys).
func render(sets []Set) string {
	var b strings.Builder
	for _, s := range sets {
		b.WriteString(s.Name)
		if s.Address != "" {
			b.WriteString(" " + s.Address)
		}
		var kv []string
		for k, v := range s.Vars {
			kv = append(kv, k+"="+v)
		}
		sortStrings(kv)
		b.WriteString(" " + strings.Join(kv, ",") + "\n")
	}
	return b.String()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		limit   []string
		ansible bool
		want    string
	}{
		{
			name: "migrun format, shared vars under each set's",
			files: map[string]string{"inv": `version: 1
vars: {pg_data: /var/lib/pgsql/data, db_port: "5432"}
sets:
  - name: site-a
    vars: {engine_host: 10.0.0.11, db_host: 10.0.0.12}
  - name: site-b
    vars: {engine_host: 10.0.1.11, db_host: 10.0.1.12, db_port: "5433"}
`},
			want: "site-a db_host=10.0.0.12,db_port=5432,engine_host=10.0.0.11,pg_data=/var/lib/pgsql/data\n" +
				"site-b db_host=10.0.1.12,db_port=5433,engine_host=10.0.1.11,pg_data=/var/lib/pgsql/data\n",
		},
		{
			name:  "migrun format, limited",
			files: map[string]string{"inv": "version: 1\nsets:\n  - {name: a, vars: {x: '1'}}\n  - {name: b}\n  - {name: c, vars: {x: '3'}}\n"},
			limit: []string{"c", "a"},
			want:  "a x=1\nc x=3\n",
		},
		{
			name: "Ansible INI: groups, children, ranges, precedence of all < parent < child < host",
			files: map[string]string{"inv": `# the team's inventory
[managers]
engine[01:02].example.com db_host=db.example.com
engine-c.example.com ansible_host=10.0.2.11 db_host="db c.example.com" # quoted, then a comment

[managers:vars]
pg_data=/var/lib/pgsql/data
tier=managers

[rhv:children]
managers

[rhv:vars]
tier=rhv
site=paris

[all:vars]
site=nowhere
ntp=ntp.example.com

[monitoring]
grafana.example.com
`},
			limit:   []string{"managers"},
			ansible: true,
			want: "engine01.example.com engine01.example.com db_host=db.example.com,ntp=ntp.example.com,pg_data=/var/lib/pgsql/data,site=paris,tier=managers\n" +
				"engine02.example.com engine02.example.com db_host=db.example.com,ntp=ntp.example.com,pg_data=/var/lib/pgsql/data,site=paris,tier=managers\n" +
				"engine-c.example.com 10.0.2.11 ansible_host=10.0.2.11,db_host=db c.example.com,ntp=ntp.example.com,pg_data=/var/lib/pgsql/data,site=paris,tier=managers\n",
		},
		{
			name: "Ansible INI with group_vars/ and host_vars/: over the file's, host over group",
			files: map[string]string{
				"hosts":                     "[managers]\nengine1 db_host=from-file tier=file-host\n[managers:vars]\ntier=file-group\nsite=file\n",
				"group_vars/all.yml":        "ntp: ntp.example.com\n",
				"group_vars/managers/a.yml": "tier: dir-group\nports: [5432, 5433]\n",
				"host_vars/engine1.yaml":    "db_host: from-host-vars\n",
			},
			ansible: true,
			want:    "engine1 engine1 db_host=from-host-vars,ntp=ntp.example.com,ports=[5432,5433],site=file,tier=file-host\n",
		},
		{
			name: "Ansible YAML, limited to a host",
			files: map[string]string{"inv": `all:
  vars: {site: nowhere}
  children:
    managers:
      vars: {pg_data: /var/lib/pgsql/data}
      hosts:
        engine1.example.com: {ansible_host: 10.0.0.11, db_host: 10.0.0.12, db_port: 5432}
        engine2.example.com:
          db_host: 10.0.1.12
`},
			limit:   []string{"engine2.example.com"},
			ansible: true,
			want:    "engine2.example.com engine2.example.com db_host=10.0.1.12,pg_data=/var/lib/pgsql/data,site=nowhere\n",
		},
		{
			name:    "Ansible YAML, every host, ungrouped ones too",
			files:   map[string]string{"inv": "all:\n  hosts:\n    lone: {x: 1}\n  children:\n    g:\n      hosts:\n        h1:\n"},
			ansible: true,
			want:    "lone lone x=1\nh1 h1 \n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := write(t, tt.files)
			file := "inv"
			if _, ok := tt.files["hosts"]; ok {
				file = "hosts"
			}
			inv, err := Load(filepath.Join(dir, file), tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := render(inv.Sets); got != tt.want || inv.Ansible != tt.ansible {
				t.Errorf("got (ansible %v)\n%s\nwant (ansible %v)\n%s", inv.Ansible, got, tt.ansible, tt.want)
			}
		})
	}
}

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name, content string
		limit         []string
		want          string
	}{
		{"duplicate set", "version: 1\nsets:\n  - name: a\n  - name: a\n", nil, `inv:4: sets[1].name: "a" is already the name of the set at line 3`},
		{"bad set name", "version: 1\nsets:\n  - name: ../x\n", nil, `inv:3: sets[0].name: "../x" is not a set name`},
		{"unknown key", "version: 1\nsets:\n  - name: a\n    varz: {}\n", nil, `field varz not found`},
		{"no version", "sets:\n  - name: a\n", nil, "version: want 1"},
		{"no sets", "version: 1\nsets: []\n", nil, "no set to run"},
		{"unknown set in --limit", "version: 1\nsets:\n  - name: a\n", []string{"g"}, "inv: --limit g: no such set"},
		{"unknown limit", "[g]\nh1\n", []string{"nope"}, "--limit nope: no such group or host"},
		{"bad section", "[g:hosts]\nh1\n", nil, "inv:1: [g:hosts]: a section is"},
		{"bad host var", "[g]\nh1 novalue\n", nil, `inv:2: host h1: want key=value, got "novalue"`},
		{"unclosed quote", "[g]\nh1 a=\"b\n", nil, "inv:2: unclosed \" quote"},
		{"bad range", "[g]\nh[3:1]\n", nil, "inv:2: host pattern \"h[3:1]\": bad range"},
		{"loop", "[a:children]\nb\n[b:children]\na\n[a]\nh\n", nil, "contain each other"},
		{"YAML group key", "all:\n  hostz: {}\n", nil, `inv:2: group all: unknown key "hostz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := write(t, map[string]string{"inv": tt.content})
			_, err := Load(filepath.Join(dir, "inv"), tt.limit)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestExpandHostPattern(t *testing.T) {
	tests := map[string]string{
		"db":               "db",
		"db[01:03].x":      "db01.x db02.x db03.x",
		"db[1:10:4]":       "db1 db5 db9",
		"r[a:c]-[1:2]":     "ra-1 ra-2 rb-1 rb-2 rc-1 rc-2",
		"engine[8:10].lab": "engine8.lab engine9.lab engine10.lab",
	}
	for in, want := range tests {
		got, err := expandHostPattern(in)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("expandHostPattern(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}
