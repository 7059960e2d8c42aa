package plan

import (
	"fmt"
	"regexp"
	"slices"
)

var (
	// Step ids and the plan name end up in file names and in messages that
	// users copy into shell commands, hence the tight alphabet.
	idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	// Host names appear before ":" in HOST:PATH and in ${hosts.NAME.x}.
	hostNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	// Var and secret names appear in ${name}; shell-like identifiers.
	varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// workstation is the host name the runner reserves for the machine migrun
// runs on (runner.Workstation); a plan may name it but not define it.
const workstation = "workstation"

// didYouMean suggests the candidate closest to s, formatted to be appended
// to a message, or "" when none is close enough to be a likely typo: one
// edit for short words, two for longer ones.
func didYouMean(s string, candidates []string) string {
	limit := 1
	if len(s) > 4 {
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, c := range slices.Sorted(slices.Values(candidates)) {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance between a and b, in
// bytes: insertions, deletions, substitutions and transpositions of
// adjacent bytes ("hots" for "host") each count one.
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
