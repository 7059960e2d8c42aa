package plan_test

import (
	"context"
	"path"
	"strconv"
	"strings"

	"github.com/migrun/migrun/steps"
)

// The test kinds stand in for the real ones so these tests do not depend
// on them: shell (a host, a scalar shorthand, a stdin that takes secrets),
// xfer (copy-like, naming its hosts in HOST:PATH fields) and svc (a host,
// an enum, a bool, an int, a list).

func testRegistry() *steps.Registry {
	return steps.NewRegistry(
		steps.Kind{Name: "shell", Summary: "run a command", NeedsHost: true, New: func() steps.Spec { return &shellSpec{} }},
		steps.Kind{Name: "xfer", Summary: "copy a file between hosts", New: func() steps.Spec { return &xferSpec{} }},
		steps.Kind{Name: "svc", Summary: "set a service state", NeedsHost: true, New: func() steps.Spec { return &svcSpec{} }},
	)
}

// noop supplies the run-time methods; the loader never calls them.
type noop struct{}

func (noop) Check(context.Context, *steps.Runtime) (steps.Check, error)       { return steps.Check{}, nil }
func (noop) Describe(context.Context, *steps.Runtime) ([]steps.Action, error) { return nil, nil }
func (noop) Apply(context.Context, *steps.Runtime) (steps.Outcome, error) {
	return steps.Outcome{}, nil
}

type shellSpec struct {
	noop
	Run     string            `yaml:"run" doc:"command line" required:"true"`
	Stdin   string            `yaml:"stdin" doc:"fed to the command's stdin" secret:"allowed"`
	Env     map[string]string `yaml:"env" doc:"environment"`
	Creates string            `yaml:"creates" doc:"skip when this path exists"`
}

func (s *shellSpec) ScalarField() string            { return "run" }
func (s *shellSpec) Hosts(stepHost string) []string { return []string{stepHost} }
func (s *shellSpec) Validate() []steps.Problem {
	if s.Creates != "" && !path.IsAbs(s.Creates) {
		return []steps.Problem{{Field: "creates", Message: "must be an absolute path"}}
	}
	return nil
}

type xferOwner struct {
	User  string `yaml:"user" doc:"owner" required:"true"`
	Group string `yaml:"group" doc:"group"`
}

type xferSpec struct {
	noop
	From  string    `yaml:"from" doc:"HOST:PATH" required:"true"`
	To    string    `yaml:"to" doc:"HOST:PATH" required:"true"`
	Mode  string    `yaml:"mode" doc:"octal mode" default:"0644"`
	Owner xferOwner `yaml:"owner" doc:"owner of the copy"`
}

func (s *xferSpec) Hosts(string) []string {
	from, _, _ := strings.Cut(s.From, ":")
	to, _, _ := strings.Cut(s.To, ":")
	return []string{from, to}
}

func (s *xferSpec) Validate() []steps.Problem {
	var ps []steps.Problem
	for _, f := range []struct{ key, val string }{{"from", s.From}, {"to", s.To}} {
		if _, p, ok := strings.Cut(f.val, ":"); !ok || !path.IsAbs(p) {
			ps = append(ps, steps.Problem{Field: f.key, Message: "want HOST:/absolute/path"})
		}
	}
	if _, err := strconv.ParseUint(s.Mode, 8, 32); s.Mode != "" && err != nil {
		ps = append(ps, steps.Problem{Field: "mode", Message: "not an octal mode"})
	}
	if s.Owner.Group == "nogroup" {
		ps = append(ps, steps.Problem{Field: "owner.group", Message: "nogroup cannot own files"})
	}
	return ps
}

type svcSpec struct {
	noop
	Name    string   `yaml:"name" doc:"unit" required:"true"`
	State   string   `yaml:"state" doc:"wanted state" enum:"started|stopped|restarted" default:"started"`
	Enabled bool     `yaml:"enabled" doc:"start at boot"`
	Wait    int      `yaml:"wait" doc:"seconds to wait"`
	Args    []string `yaml:"args" doc:"extra arguments"`
}

func (s *svcSpec) Hosts(stepHost string) []string { return []string{stepHost} }
func (s *svcSpec) Validate() []steps.Problem {
	var ps []steps.Problem
	if s.Wait < 0 {
		ps = append(ps, steps.Problem{Field: "wait", Message: "must not be negative"})
	}
	if strings.Contains(s.Name, "/") {
		ps = append(ps, steps.Problem{Message: "a unit name has no /"})
	}
	return ps
}
