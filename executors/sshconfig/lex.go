package sshconfig

import (
	"errors"
	"strings"
)

// The lexing below follows OpenSSH's readconf.c and misc.c (strdelim,
// argv_split) rule for rule, because a file is only understood the way ssh
// understands it if it is split the way ssh splits it: "Key=Value",
// "Key = Value" and "Key Value" are one thing, quotes group, a backslash
// escapes only a quote, a backslash or (outside quotes) a space, and a
// token starting with # ends the line.

const whitespace = " \t\r\n"

// splitKeyword splits a line into its lower-cased keyword and the rest
// after the separator (white space and at most one '='). ok is false for a
// blank or comment line.
func splitKeyword(line string) (keyword, rest string, ok bool) {
	line = strings.TrimRight(line, whitespace+"\f")
	line = strings.TrimLeft(line, whitespace)
	if line == "" || line[0] == '#' {
		return "", "", false
	}
	kw, rest, ok := strdelim(line)
	if !ok || kw == "" || kw[0] == '#' {
		return "", "", false
	}
	return strings.ToLower(kw), strings.TrimLeft(rest, whitespace), true
}

// strdelim returns the next token of s and what follows it: tokens end at
// white space or one '=' (with the white space around it), and a token
// starting with a double quote runs to the next double quote. ok is false
// for an unterminated quote.
func strdelim(s string) (tok, rest string, ok bool) {
	i := strings.IndexAny(s, whitespace+`"=`)
	if i < 0 {
		return s, "", true
	}
	if s[i] == '"' {
		// As in OpenSSH, the quote is dropped where it is found and the
		// token runs on to the next quote.
		body := s[:i] + s[i+1:]
		j := strings.IndexByte(body[i:], '"')
		if j < 0 {
			return "", "", false
		}
		j += i
		return body[:j], strings.TrimLeft(body[j+1:], whitespace), true
	}
	tok = s[:i]
	sawEquals := s[i] == '='
	rest = strings.TrimLeft(s[i+1:], whitespace)
	if !sawEquals && strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], whitespace)
	}
	return tok, rest, true
}

var errQuotes = errors.New("invalid quotes")

// splitArgs splits an option's arguments as argv_split does with comments
// ending the line.
func splitArgs(s string) ([]string, error) {
	var args []string
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == '#' {
			break
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')):
				i++
				b.WriteByte(s[i])
				continue
			case quote == 0 && (c == ' ' || c == '\t'):
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
				continue
			case quote != 0 && c == quote:
				quote = 0
				continue
			default:
				b.WriteByte(c)
				continue
			}
			break
		}
		if quote != 0 {
			return nil, errQuotes
		}
		args = append(args, b.String())
	}
	return args, nil
}
