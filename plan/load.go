package plan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"

	"github.com/migrun/migrun/steps"
)

// Load reads the plan at path; see Parse.
func Load(path string, reg *steps.Registry, overrides map[string]string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, reg, overrides)
}

// Parse decodes, interpolates and validates the plan in data; file names it
// in messages. reg lists the step kinds the plan may use (nil: the builtin
// ones). overrides are --var values; each must name a declared var.
//
// When anything is wrong, Parse returns a nil plan and Errors listing every
// problem found, in file order.
func Parse(file string, data []byte, reg *steps.Registry, overrides map[string]string) (*Plan, error) {
	if reg == nil {
		reg = steps.Builtin()
	}
	l := &loader{file: file, reg: reg}
	root := l.parseYAML(data)
	if root == nil {
		return nil, l.errs.sorted()
	}
	p := l.document(root, overrides)
	if len(l.errs) > 0 {
		return nil, l.errs.sorted()
	}
	p.setDigests()
	p.Source = data
	return p, nil
}

// yamlLineRE pulls the line out of yaml.v3's syntax errors, which are plain
// strings like "yaml: line 3: could not find expected ':'".
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses data into the root node of its single document, or
// records why it cannot and returns nil.
func (l *loader) parseYAML(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 turns its own failures into errors but lets other panics
		// through; a malformed plan must never crash migrun.
		if r := recover(); r != nil {
			l.errorf(nil, "", "the YAML parser failed on this file: %v", r)
			root = nil
		}
	}()
	if line, col, ok := invalidUTF8(data); ok {
		// yaml.v3 says only "invalid leading UTF-8 octet", with no place.
		l.errs = append(l.errs, &Error{File: l.file, Line: line, Column: col,
			Msg: "YAML: not UTF-8 text (a plan is UTF-8; convert the file, e.g. iconv -f LATIN1 -t UTF-8)"})
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.errorf(nil, "", "the plan is empty")
		} else {
			l.yamlError(err, data)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		l.yamlError(err, data)
		return nil
	default:
		l.errorf(&next, "", "a plan is one YAML document; this is a second one")
		return nil
	}
	if len(doc.Content) == 0 {
		l.errorf(nil, "", "the plan is empty")
		return nil
	}
	if expandedSize(doc.Content[0]) > maxExpandedNodes {
		l.errorf(nil, "", "YAML aliases expand this plan to more than %d nodes", maxExpandedNodes)
		return nil
	}
	return doc.Content[0]
}

// maxExpandedNodes bounds the size of a plan with its aliases expanded. A
// few kilobytes of aliases of aliases can stand for billions of nodes, and
// the decoder walks each use of an alias; no real plan comes near this.
const maxExpandedNodes = 1_000_000

// expandedSize counts the nodes under root as if every alias were written
// out, stopping early once past maxExpandedNodes.
func expandedSize(root *yaml.Node) int {
	memo := map[*yaml.Node]int{}
	var size func(n *yaml.Node) int
	size = func(n *yaml.Node) int {
		n = deref(n)
		if s, ok := memo[n]; ok {
			return s
		}
		memo[n] = 1 // an alias inside its own anchor: the decoder does not recurse there
		total := 1
		for _, c := range n.Content {
			total = min(total+size(c), maxExpandedNodes+1)
		}
		memo[n] = total
		return total
	}
	return size(root)
}

// DeclaredVars lists the vars the plan at path declares, without loading
// it: what an inventory's sets may set. A plan that is not even YAML is
// left for Load to report.
func DeclaredVars(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Vars map[string]yaml.Node `yaml:"vars"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	names := make(map[string]bool, len(doc.Vars))
	for k := range doc.Vars {
		names[k] = true
	}
	return names, nil
}
