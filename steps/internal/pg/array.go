package pg

import (
	"fmt"
	"strings"
)

// ParseArray reads a one-dimensional array of scalars as PostgreSQL
// prints it ({1,2}, {"a b","c\"d"}). A NULL element is an error: the
// arrays read here (chunk bounds) never hold one, and "" would be wrong.
func ParseArray(s string) ([]string, error) {
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("array %q: not {...}", short(s))
	}
	body := s[1 : len(s)-1]
	if body == "" {
		return nil, nil
	}
	var out []string
	for i := 0; ; {
		var elem strings.Builder
		if i < len(body) && body[i] == '"' {
			i++
			for ; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++
					if i == len(body) {
						break
					}
				}
				elem.WriteByte(body[i])
			}
			if i == len(body) {
				return nil, fmt.Errorf("array %q: unterminated quote", short(s))
			}
			i++ // the closing quote
		} else {
			j := i
			for ; j < len(body) && body[j] != ','; j++ {
				if strings.ContainsRune("{}\"\\", rune(body[j])) {
					return nil, fmt.Errorf("array %q: nested or malformed", short(s))
				}
			}
			if j == i || body[i:j] == "NULL" {
				return nil, fmt.Errorf("array %q: empty or NULL element", short(s))
			}
			elem.WriteString(body[i:j])
			i = j
		}
		out = append(out, elem.String())
		if i == len(body) {
			return out, nil
		}
		if body[i] != ',' {
			return nil, fmt.Errorf("array %q: expected ',' at %d", short(s), i+1)
		}
		i++
	}
}

// ArrayLiteral is the text of a one-dimensional array of elems, each
// quoted, which the array's element type's input reads back.
func ArrayLiteral(elems []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(e))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func short(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
