package runner

import (
	"errors"
	"strings"
	"testing"
)

// TestNextAction: status's advice and what apply accepts come from the
// same rules, so the advice is never a command apply then refuses.
func TestNextAction(t *testing.T) {
	undone := []*StepRecord{{ID: "point-back", Status: StatusDone, Changed: true}}
	tests := []struct {
		name   string
		j      *Journal
		advice string // in NextAction; "" : none
		resume error  // what --resume returns (nil: it continues)
	}{
		{"no run", nil, "", ErrNothingToResume},
		{"completed", &Journal{Status: StatusCompleted}, "", ErrCompleted},
		{"interrupted", &Journal{Status: StatusInterrupted}, "Continue with: migrun apply --resume", nil},
		{"killed", &Journal{Status: StatusRunning}, "once no apply holds the lock, continue with: migrun apply --resume", nil},
		{"failed", &Journal{Status: StatusFailed, FailedStep: "dump"}, "Fix the cause and continue with: migrun apply --resume", nil},
		{"rolled back", &Journal{Status: StatusFailed, FailedStep: "dump", OnFailure: undone}, "on_failure ran (point-back) and may have undone steps recorded done: start over with: migrun apply --restart", ErrRolledBack},
		// Interrupted while on_failure ran: --resume is refused, so the
		// advice is --restart, not --resume.
		{"interrupted in on_failure", &Journal{Status: StatusInterrupted, FailedStep: "dump", OnFailure: undone}, "start over with: migrun apply --restart", ErrRolledBack},
		{"past the point of no return", &Journal{Status: StatusFailed, FailedStep: "wait", PointOfNoReturn: "start-engine"},
			"on_failure was not run: the run was past start-engine, the point of no return", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NextAction(tt.j)
			if tt.advice == "" && got != "" || !strings.Contains(got, tt.advice) {
				t.Errorf("NextAction = %q, want %q", got, tt.advice)
			}
			err := resumeRefusal(tt.j)
			if tt.resume == nil && err != nil || tt.resume != nil && !errors.Is(err, tt.resume) {
				t.Errorf("resume: %v, want %v", err, tt.resume)
			}
			if says := strings.Contains(got, "--resume"); says != (err == nil) {
				t.Errorf("advice %q while --resume gives %v", got, err)
			}
			fresh := freshRefusal(tt.j)
			if (tt.j == nil) != (fresh == nil) {
				t.Errorf("plain apply: %v", fresh)
			}
		})
	}
}
