package main

import (
	"bytes"
	"io"
)

// prefixWriter indents streamed command output under its step line. The
// redactor in front of it only ever writes whole lines (or a final partial
// one), so prefixing each written line is enough.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		out.WriteString(p.prefix)
		out.Write(line)
	}
	if _, err := p.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}
