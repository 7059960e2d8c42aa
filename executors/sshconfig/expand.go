package sshconfig

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// tokens are the values of ssh's %-tokens for one connection.
type tokens map[byte]string

// percentExpand replaces %X with its token and %% with %, and, when dollar
// is set, ${VAR} with the environment variable VAR (an unset variable is an
// error, as in ssh). An unknown token is an error.
func percentExpand(s string, t tokens, dollar bool, getenv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if dollar && c == '$' && i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("environment variable %q missing closing '}'", s[i+2:])
			}
			name := s[i+2 : i+2+end]
			if name == "" {
				return "", fmt.Errorf("zero-length environment variable in %q", s)
			}
			v, ok := getenv(name)
			if !ok {
				return "", fmt.Errorf("environment variable ${%s} has no value", name)
			}
			b.WriteString(v)
			i += 2 + end
			continue
		}
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("%q ends with a lone %%", s)
		}
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := t[s[i]]
		if !ok {
			return "", fmt.Errorf("unknown token %%%c in %q", s[i], s)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// tildeExpand replaces a leading ~ or ~user as ssh's tilde_expand does.
func tildeExpand(p string, env Env) (string, error) {
	if !strings.HasPrefix(p, "~") {
		return p, nil
	}
	rest := p[1:]
	home := env.Home
	if rest != "" && rest[0] != '/' {
		user := rest
		rest = ""
		if i := strings.IndexByte(user, '/'); i >= 0 {
			user, rest = user[:i], user[i:]
		}
		h, err := env.homeOf(user)
		if err != nil {
			return "", fmt.Errorf("%s: no such user %s", p, user)
		}
		home = h
	}
	rest = strings.TrimLeft(rest, "/")
	if !strings.HasSuffix(home, "/") {
		home += "/"
	}
	return home + rest, nil
}

// connectionHash is %C: the SHA-1 of local host name, remote host, port
// and remote user, as ssh computes it for ControlPath and friends.
func connectionHash(thisHost, host string, port int, user string) string {
	sum := sha1.Sum([]byte(thisHost + host + strconv.Itoa(port) + user))
	return hex.EncodeToString(sum[:])
}
