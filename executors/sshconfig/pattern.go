package sshconfig

import "strings"

// matchPattern reports whether s matches an OpenSSH wildcard pattern:
// '*' any run of characters, '?' one character, everything else itself,
// case-sensitively.
func matchPattern(s, pattern string) bool {
	for {
		if pattern == "" {
			return s == ""
		}
		if pattern[0] == '*' {
			pattern = strings.TrimLeft(pattern, "*")
			if pattern == "" {
				return true
			}
			for i := 0; i < len(s); i++ {
				if matchPattern(s[i:], pattern) {
					return true
				}
			}
			return false
		}
		if s == "" || (pattern[0] != '?' && pattern[0] != s[0]) {
			return false
		}
		s, pattern = s[1:], pattern[1:]
	}
}

// matchList is match_pattern_list: pattern is a comma-separated list whose
// entries may be negated with '!'. A matching negated entry decides "no"
// whatever else matches (-1); otherwise 1 if some entry matched, else 0.
// lower folds the patterns (not s) to lower case.
func matchList(s, patterns string, lower bool) int {
	positive := 0
	for _, p := range strings.Split(patterns, ",") {
		negated := strings.HasPrefix(p, "!")
		if negated {
			p = p[1:]
		}
		if lower {
			p = strings.ToLower(p)
		}
		if matchPattern(s, p) {
			if negated {
				return -1
			}
			positive = 1
		}
	}
	return positive
}

// matchHostname is match_hostname: the host is folded to lower case too.
func matchHostname(host, patterns string) bool {
	return matchList(strings.ToLower(host), patterns, true) == 1
}
