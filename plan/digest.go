package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// hostDigest is the part of a host that decides where and as whom a step
// runs. Connection details (identity file, jump host) are left out: they
// change how migrun gets there, not what runs.
type hostDigest struct {
	Local   bool   `json:"local,omitempty"`
	Address string `json:"address,omitempty"`
	User    string `json:"user,omitempty"`
	Port    int    `json:"port,omitempty"`
	Become  string `json:"become,omitempty"`
}

func digestOfHost(h Host) hostDigest {
	return hostDigest{Local: h.Local, Address: h.Address, User: h.User, Port: h.Port, Become: h.Become}
}

// stepDigest is the canonical form of a step that Step.Digest hashes. The
// description is left out: rewording it must not block a resume.
type stepDigest struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Host    string `json:"host,omitempty"`
	Become  string `json:"become,omitempty"`
	Timeout string `json:"timeout,omitempty"`
	Retries int    `json:"retries,omitempty"`
	When    string `json:"when,omitempty"`
	// PointOfNoReturn decides whether a later failure rolls back.
	PointOfNoReturn bool           `json:"point_of_no_return,omitempty"`
	Spec            map[string]any `json:"spec"`
	// Hosts are the hosts the step touches. A step recorded done on
	// db.example.com is not done on the new address after `--var
	// db_host=...`, so their identity is part of the step.
	Hosts map[string]hostDigest `json:"hosts,omitempty"`
}

// planDigest is the canonical form Plan.Digest hashes.
type planDigest struct {
	Name      string                `json:"name"`
	Hosts     map[string]hostDigest `json:"hosts"`
	Steps     []string              `json:"steps"`
	OnFailure []string              `json:"on_failure"`
	// When holds the value of every var a `when:` reads: it decides what
	// runs without appearing in any step.
	When map[string]bool `json:"when,omitempty"`
	// Detect holds the detections' probes (their answers are the run's,
	// kept in its journal).
	Detect []detectDigest `json:"detect,omitempty"`
}

type detectDigest struct {
	Name       string            `json:"name"`
	Host       hostDigest        `json:"host"`
	File       string            `json:"file,omitempty"`
	Command    string            `json:"command,omitempty"`
	PgDatabase *DetectPgDatabase `json:"pg_database,omitempty"`
}

// setDigests fills Step.Digest for every step and then Plan.Digest.
func (p *Plan) setDigests() {
	when := map[string]bool{}
	digests := func(list []Step) []string {
		out := make([]string, len(list))
		for i := range list {
			list[i].Digest = p.stepDigest(&list[i])
			out[i] = list[i].Digest
			if list[i].When != "" {
				for _, t := range WhenTerms(list[i].When) {
					if val, isVar := p.Vars[t.Var]; isVar {
						when[t.Var], _ = ParseBool(val)
					}
				}
			}
		}
		return out
	}
	d := planDigest{
		Name:      p.Name,
		Hosts:     map[string]hostDigest{},
		Steps:     digests(p.Steps),
		OnFailure: digests(p.OnFailure),
		When:      when,
	}
	for name, h := range p.Hosts {
		d.Hosts[name] = digestOfHost(h)
	}
	for _, det := range p.Detect {
		d.Detect = append(d.Detect, detectDigest{Name: det.Name, Host: digestOfHost(p.Hosts[det.Host]),
			File: det.File, Command: det.Command, PgDatabase: det.PgDatabase})
	}
	p.Digest = hash(d)
}

func (p *Plan) stepDigest(st *Step) string {
	d := stepDigest{
		ID:              st.ID,
		Kind:            st.Kind,
		Host:            st.Host,
		Become:          st.Become,
		Retries:         st.Retries,
		When:            st.When,
		PointOfNoReturn: st.PointOfNoReturn,
		Spec:            canonical(st.Spec),
		Hosts:           map[string]hostDigest{},
	}
	if st.Timeout > 0 {
		d.Timeout = st.Timeout.String()
	}
	for _, name := range append([]string{st.Host}, st.Spec.Hosts(st.Host)...) {
		if h, ok := p.Hosts[name]; ok {
			d.Hosts[name] = digestOfHost(h)
		}
	}
	return hash(d)
}

// hash is the hex sha256 of v's JSON. encoding/json writes struct fields in
// declaration order and map keys sorted, which makes it canonical here.
func hash(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only strings, bools, ints and maps of them get here.
		panic("plan: digest: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
