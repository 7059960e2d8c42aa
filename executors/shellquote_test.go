package executors

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "''"},
		{"abc", "abc"},
		{"/usr/bin/pg_dump", "/usr/bin/pg_dump"},
		{"a-b_c.d=e:f,g@h%i+j", "a-b_c.d=e:f,g@h%i+j"},
		{"hello world", "'hello world'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"$HOME", "'$HOME'"},
		{"`id`", "'`id`'"},
		{"a;b", "'a;b'"},
		{"~", "'~'"},
		{"*.sql", "'*.sql'"},
		{"line\nbreak", "'line\nbreak'"},
		{`back\slash`, `'back\slash'`},
		{"tab\there", "'tab\there'"},
		{"ümlaut", "'ümlaut'"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestQuoteArgv(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"ls", "-l", "/tmp"}, "ls -l /tmp"},
		{[]string{"echo", "a b", ""}, "echo 'a b' ''"},
		// NAME=value in command position would be an assignment.
		{[]string{"A=b", "c=d"}, "'A=b' c=d"},
	}
	for _, tt := range tests {
		if got := QuoteArgv(tt.in); got != tt.want {
			t.Errorf("QuoteArgv(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestQuoteArgvRoundTrip feeds quoted words to a real sh and checks that it
// splits them back into exactly the original argv.
func TestQuoteArgvRoundTrip(t *testing.T) {
	words := []string{
		"plain", "", " ", "two words", "it's", `"dq"`, "$HOME", "${X:-y}", "`id`", "$(id)",
		"a;b|c&d", "<in >out", "*", "?", "[a]", "~", "~root", "#comment", "!", "\\", "\n", "\t",
		"'''", "a'b'c", "-n", "--", "=", "x=y", "ümlaut", "%s",
	}
	// printf '%s\0' prints each argument NUL-terminated, so any byte
	// but NUL survives the round trip.
	script := "printf '%s\\0' " + QuoteArgv(words)
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", script, err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !reflect.DeepEqual(got, words) {
		t.Errorf("round trip through sh:\n got %q\nwant %q", got, words)
	}
}
