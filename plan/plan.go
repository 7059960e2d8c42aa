// Package plan loads a migrun plan from YAML: strict decoding (unknown keys,
// wrong types and duplicates are errors), variable and secret interpolation,
// and validation. Every problem is reported at once, each naming
// file:line:column and the step id.
package plan

import (
	"time"

	"github.com/migrun/migrun/steps"
)

// Version is the plan format version this migrun reads.
const Version = 1

// Plan is a loaded, interpolated and validated plan.
type Plan struct {
	File        string // path as given
	Name        string // [a-z0-9-]; names the journal
	Description string
	Vars        map[string]string // after --var overrides
	Secrets     map[string]SecretSource
	Hosts       map[string]Host
	// Detect are the facts found on the hosts when a run starts, in file
	// order; `when:` uses them as vars.
	Detect    []Detection
	Steps     []Step
	OnFailure []Step
	// Digest is the hex sha256 of the resolved plan (vars interpolated,
	// secrets as tokens): it changes when anything that would run changes.
	Digest string
	// Source is the plan file's text as loaded (it holds no secret
	// values, only references), kept in reviewed plans.
	Source []byte
}

// SecretSource says where a secret's value comes from; exactly one is set.
type SecretSource struct {
	Env    string // environment variable name
	File   string // file whose first line is the value (with Key: whose KEY="value" line)
	Prompt string // text of a no-echo prompt on the terminal
	// Host, with File, reads the file on that plan host instead of the
	// workstation: the runner reads it once connected, and only when a
	// step that will run uses the secret (a password engine-setup wrote
	// in a config file the operator never saw).
	Host string
	// Key, with File, takes the value of KEY="value" (shell syntax, as
	// oVirt's *.conf files) instead of the first line.
	Key string
}

// Host is a machine the plan touches.
type Host struct {
	Name         string // the key under hosts:
	Local        bool   // the workstation itself
	Address      string // host name or IP; ~/.ssh/config may map it
	User         string
	Port         int    // 0: from ~/.ssh/config, else 22
	IdentityFile string // private key path
	Jump         string // ProxyJump: [user@]host[:port][,...]
	// JumpIdentityFiles gives, for a hop of Jump that is another host of
	// the plan, that host's identity_file, keyed by the hop as it appears
	// in Jump.
	JumpIdentityFiles map[string]string
	Become            string // how steps' `become:` switches user: sudo (default) or su
	Line, Column      int    // where the host was defined
}

// Step is one step of the plan (or of on_failure).
type Step struct {
	ID          string
	Kind        string // the step-kind key, e.g. "copy"
	Spec        steps.Spec
	Host        string // "" when the kind names its hosts itself
	Description string
	Become      string
	Timeout     time.Duration // 0: none
	Retries     int
	When        string // var names joined by &&, each optionally prefixed by "!" to negate (see WhenTerms)
	// PointOfNoReturn: once this step is done, a later failure must not
	// run on_failure (e.g. the engine now writes to the new database, and
	// pointing it back would leave those writes behind).
	PointOfNoReturn bool
	// Digest is the hex sha256 of this step's resolved definition; resume
	// refuses when a step recorded done has a different digest now.
	Digest       string
	Line, Column int
}
