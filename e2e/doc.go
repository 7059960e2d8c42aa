// Package e2e holds migrun's end-to-end tests, built only with the e2e tag
// (`make e2e`, root only): they run migrun over SSH against the throwaway
// hosts engine and db that e2e/hosts/up.sh brings up on this machine. See
// e2e/hosts/README.md.
package e2e
