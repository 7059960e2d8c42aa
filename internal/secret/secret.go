// Package secret keeps secret values out of everything migrun prints, stores
// or passes on a command line.
//
// When a plan is loaded, every ${name} that names a secret is replaced by a
// Token: an opaque placeholder that carries the name but never the value.
// Plan strings, digests, dry-run output and the journal therefore only ever
// hold tokens. A step turns a token into the value with Values.Reveal at the
// last moment, for data it sends on a process's stdin or writes to a 0600
// file, and executors refuse to start a process whose argv, environment or
// working directory still holds a token.
package secret

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// The delimiters are control characters no plan author types, so a token can
// not be forged or collide with ordinary text.
const (
	open  = "\x1esecret:"
	close = "\x1e"
)

var tokenRE = regexp.MustCompile("\x1esecret:([A-Za-z0-9_.-]+)\x1e")

// Token is the placeholder for the secret called name.
func Token(name string) string { return open + name + close }

// Contains reports whether s holds any secret token.
func Contains(s string) bool { return strings.Contains(s, open) }

// Names lists the secrets s refers to, sorted, without repeats.
func Names(s string) []string {
	seen := map[string]bool{}
	for _, m := range tokenRE.FindAllStringSubmatch(s, -1) {
		seen[m[1]] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Mask renders s for people: each token becomes <secret:name>.
func Mask(s string) string {
	return tokenRE.ReplaceAllString(s, "<secret:$1>")
}

// Masked is the text that stands for a secret value found in output.
const Masked = "********"

// Values holds resolved secrets by name.
type Values map[string]string

// Reveal replaces every token in s by its value. A token whose secret was
// not resolved is an error naming it, never an empty string.
func (v Values) Reveal(s string) (string, error) {
	var missing []string
	out := tokenRE.ReplaceAllStringFunc(s, func(tok string) string {
		name := tokenRE.FindStringSubmatch(tok)[1]
		val, ok := v[name]
		if !ok {
			missing = append(missing, name)
			return ""
		}
		return val
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("secret %s was not resolved", strings.Join(missing, ", "))
	}
	return out, nil
}

// Redact replaces every secret value found in s by Masked. Longer values
// are replaced first so a value containing another is masked whole.
func (v Values) Redact(s string) string {
	for _, val := range v.sortedValues() {
		s = strings.ReplaceAll(s, val, Masked)
	}
	return s
}

func (v Values) sortedValues() []string {
	vals := make([]string, 0, len(v))
	for _, val := range v {
		if val != "" {
			vals = append(vals, val)
		}
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	return vals
}

// Writer returns a writer that masks secret values (and tokens) in
// everything written to w. It holds back an incomplete last line so a value
// split across two writes is still caught; Flush (or a final newline)
// releases it. Safe for concurrent use.
func (v Values) Writer(w io.Writer) *Redactor {
	return &Redactor{w: w, values: v}
}

// Redactor is the writer returned by Values.Writer.
type Redactor struct {
	mu     sync.Mutex
	w      io.Writer
	values Values
	buf    []byte
}

// maxHold bounds how much of an unterminated line is held back.
const maxHold = 64 << 10

func (r *Redactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	i := bytes.LastIndexByte(r.buf, '\n')
	if i < 0 && len(r.buf) < maxHold {
		return len(p), nil
	}
	cut := i + 1
	if i < 0 {
		cut = len(r.buf)
	}
	if err := r.emit(r.buf[:cut]); err != nil {
		return 0, err
	}
	r.buf = append(r.buf[:0], r.buf[cut:]...)
	return len(p), nil
}

// Flush writes out a held-back partial line.
func (r *Redactor) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 {
		return nil
	}
	err := r.emit(r.buf)
	r.buf = r.buf[:0]
	return err
}

func (r *Redactor) emit(b []byte) error {
	_, err := io.WriteString(r.w, r.values.Redact(Mask(string(b))))
	return err
}
