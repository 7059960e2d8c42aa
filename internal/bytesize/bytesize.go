// Package bytesize renders sizes for people. It is the one byte formatter
// of migrun's output (dry runs, progress, step outcomes, errors), so the
// same size reads the same everywhere.
package bytesize

import (
	"strconv"
	"strings"
)

// Format renders n bytes in binary units, one decimal where it says
// something: "512 B", "12 MiB", "12.3 MiB", "1.2 GiB".
func Format(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	s := strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + "KMGTPE"[exp:exp+1] + "iB"
}
