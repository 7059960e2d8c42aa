package executors

import "strings"

// Quote returns word as one POSIX shell word. Words made only of characters
// no shell treats specially are left bare so logged commands stay readable;
// anything else is wrapped in single quotes, inside which nothing is special
// but the single quote itself: that one closes the quotes, is written
// backslash-escaped, and the quotes reopen.
func Quote(word string) string {
	if word != "" && isSafeWord(word) {
		return word
	}
	return singleQuote(word)
}

// QuoteArgv quotes each word with Quote and joins them with spaces, so that
// `sh -c` splits the result back into exactly argv. A first word holding '='
// is quoted even though Quote leaves it bare: in command position NAME=value
// would be taken as a variable assignment, not as the program to run.
func QuoteArgv(argv []string) string {
	var b strings.Builder
	for i, w := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == 0 && strings.Contains(w, "=") {
			b.WriteString(singleQuote(w))
			continue
		}
		b.WriteString(Quote(w))
	}
	return b.String()
}

func singleQuote(w string) string {
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// isSafeWord reports whether w needs no quoting. The set is deliberately
// small: letters, digits and punctuation that sh never treats specially
// inside an argument ('~' is excluded because a leading tilde expands; '='
// is special only in command position, which QuoteArgv handles).
func isSafeWord(w string) bool {
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("/-_.=:,@%+", c) >= 0:
		default:
			return false
		}
	}
	return true
}
