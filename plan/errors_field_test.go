package plan

import "testing"

func TestErrorField(t *testing.T) {
	tests := map[string]string{
		`copy.to: unknown host "dbb"`:                      "copy.to",
		`hosts.db.port: 70000 is not a TCP port (1-65535)`: "hosts.db.port",
		`command.argv[2]: undefined variable "x" in ${x}`:  "command.argv[2]",
		`vars.DB_HOST: undefined variable "y" in ${y}`:     "vars.DB_HOST",
		`when: no var "verify"`:                            "when",
		`YAML: did not find expected key`:                  "",
		`no step kind; give one of: command, copy`:         "",
		`unknown key "bogus" (did you mean "host"?)`:       "",
		`--var x: the plan has no var "x"`:                 "",
	}
	for msg, want := range tests {
		if got := (&Error{Msg: msg}).withField().Field; got != want {
			t.Errorf("the field of %q = %q, want %q", msg, got, want)
		}
	}
}
