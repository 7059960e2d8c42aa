package textedit

import "testing"

func TestUnifiedDiff(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"equal", "a\n", "a\n", ""},
		{"new file", "", "one\ntwo", "--- /dev/null\n+++ f\n@@ -0,0 +1,2 @@\n+one\n+two\n"},
		{"edit", "a\nb\nc\n", "a\nB\nc\n", "--- f\n+++ f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"},
		{"emptied", "a\n", "", "--- f\n+++ f\n@@ -1 +0,0 @@\n-a\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UnifiedDiff("f", tt.old, tt.new); got != tt.want {
				t.Errorf("UnifiedDiff =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
