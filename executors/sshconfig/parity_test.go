package sshconfig

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestParityWithOpenSSH resolves every case of testdata/parity with this
// package and with `ssh -G -F FILE`, and compares what migrun uses: the
// host name, user, port, identity files, proxy settings and known_hosts
// settings. A case ssh refuses must be refused too, on the same line.
//
// Each file says what to ask with "# case: [-l user] [-p port] [-i file]
// [-J jump] host" lines; @DIR@ stands for the directory the corpus is
// copied to (Include needs absolute paths under -F).
func TestParityWithOpenSSH(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ssh is not installed; CI must run this comparison")
		}
		t.Skip("ssh is not installed")
	}
	dir := copyCorpus(t, "testdata/parity")
	files, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	if len(files) < 20 {
		t.Fatalf("corpus has %d files, want at least 20", len(files))
	}
	env, err := CurrentEnv()
	if err != nil {
		t.Fatal(err)
	}
	cases := 0
	for _, file := range files {
		for _, c := range corpusCases(t, file) {
			cases++
			name := filepath.Base(file) + "/" + strings.ReplaceAll(strings.Join(c, " "), dir, "@DIR@")
			t.Run(name, func(t *testing.T) {
				compareWithSSH(t, sshBin, file, c, env)
			})
		}
	}
	if cases < 40 {
		t.Errorf("corpus has %d cases, want at least 40", cases)
	}
}

func compareWithSSH(t *testing.T, sshBin, file string, args []string, env Env) {
	t.Helper()
	host := args[len(args)-1]
	over := overridesFrom(t, args[:len(args)-1])
	cmd := exec.Command(sshBin, append(append([]string{"-G", "-F", file}, args[:len(args)-1]...), host)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, sshErr := cmd.Output()
	got, err := Resolve(host, Sources(file, env), env, over)
	if sshErr != nil {
		if err == nil {
			t.Fatalf("ssh -G refuses it (%s) but Resolve accepts it", strings.TrimSpace(stderr.String()))
		}
		if m := regexp.MustCompile(`line (\d+)`).FindStringSubmatch(stderr.String()); m != nil {
			if !strings.Contains(err.Error(), "line "+m[1]+":") {
				t.Errorf("ssh refuses line %s (%s); Resolve says: %v", m[1], strings.TrimSpace(stderr.String()), err)
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("ssh -G accepts it, Resolve says: %v", err)
	}
	want := parseDump(out)
	if len(got.CertificateFiles) > 0 {
		if w := want["certificatefile"]; strings.Join(w, "\n") != strings.Join(got.CertificateFiles, "\n") {
			t.Errorf("certificatefile: ssh %q, migrun %q", w, got.CertificateFiles)
		}
	}
	check := func(key string, gotVal ...string) {
		t.Helper()
		w := want[key]
		if w == nil {
			w = []string{}
		}
		if gotVal == nil {
			gotVal = []string{}
		}
		if strings.Join(w, "\n") != strings.Join(gotVal, "\n") {
			t.Errorf("%s: ssh -G %q, migrun %q", key, w, gotVal)
		}
	}
	check("hostname", got.HostName)
	check("user", got.User)
	check("port", strconv.Itoa(got.Port))
	check("identityfile", got.IdentityFiles...)
	check("identitiesonly", yesNo(got.IdentitiesOnly))
	check("hashknownhosts", yesNo(got.HashKnownHosts))
	check("stricthostkeychecking", map[string]string{"yes": "true", "no": "false", "ask": "ask", "accept-new": "accept-new"}[got.StrictHostKeyChecking])
	check("userknownhostsfile", orNone(got.UserKnownHostsFiles)...)
	check("globalknownhostsfile", orNone(got.GlobalKnownHostsFiles)...)
	if got.ProxyJump != "" {
		check("proxyjump", got.ProxyJump)
	} else {
		check("proxyjump")
	}
	if got.ProxyCommand != "" {
		check("proxycommand", got.ProxyCommand)
	} else {
		check("proxycommand")
	}
	if got.HostKeyAlias != "" {
		check("hostkeyalias", got.HostKeyAlias)
	} else {
		check("hostkeyalias")
	}
	if got.ConnectTimeout != 0 {
		check("connecttimeout", strconv.Itoa(got.ConnectTimeout))
	} else {
		check("connecttimeout", "none")
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// orNone joins a list as ssh -G prints it on one line.
func orNone(list []string) []string {
	if len(list) == 0 {
		return []string{"none"}
	}
	return []string{strings.Join(list, " ")}
}

// parseDump reads `ssh -G` output: one "keyword value" per line; a
// keyword repeated (identityfile) gives several values. Keywords printed
// as a list on one line (known hosts files) keep the line.
func parseDump(out []byte) map[string][]string {
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		m[k] = append(m[k], v)
	}
	return m
}

func overridesFrom(t *testing.T, flags []string) Overrides {
	var o Overrides
	for i := 0; i+1 < len(flags); i += 2 {
		switch v := flags[i+1]; flags[i] {
		case "-l":
			o.User = v
		case "-p":
			o.Port, _ = strconv.Atoi(v)
		case "-i":
			// ssh drops a -i file that does not exist, with a warning;
			// migrun refuses a missing file the plan names when it dials.
			if _, err := os.Stat(v); err == nil {
				o.IdentityFiles = append(o.IdentityFiles, v)
			}
		case "-J":
			o.ProxyJump = v
		default:
			t.Fatalf("case flag %s not understood", flags[i])
		}
	}
	return o
}

// corpusCases reads the "# case:" lines of a corpus file.
func corpusCases(t *testing.T, file string) [][]string {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cases [][]string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "# case:"); ok {
			cases = append(cases, strings.Fields(rest))
		}
	}
	if len(cases) == 0 {
		t.Fatalf("%s has no # case: line", file)
	}
	return cases
}

// copyCorpus copies src into a temporary directory, replacing @DIR@ with
// that directory, with the permissions ssh requires of included files.
func copyCorpus(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, bytes.ReplaceAll(data, []byte("@DIR@"), []byte(dst)), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
