package steps

import "sort"

// builtin lists every step kind. A kind's file defines its Kind value.
func builtin() []Kind {
	return []Kind{
		commandKind,
		copyKind,
		ovirtDbConfKind,
		configSetKind,
		lineKind,
		engineBackupKind,
		ovirtHEMaintenanceKind,
		serviceKind,
		packageKind,
		waitKind,
		firewallKind,
		pgDumpKind,
		pgRestoreKind,
		pgVerifyKind,
		pgCaptureKind,
		pgStreamKind,
		pgReplicateKind,
		pgInitKind,
		pgRoleKind,
		pgDatabaseKind,
		pgConfKind,
		pgHbaKind,
		pgCheckKind,
	}
}

// Registry is the set of step kinds a plan may use.
type Registry struct {
	kinds map[string]Kind
}

// Builtin returns a registry of migrun's own step kinds.
func Builtin() *Registry { return NewRegistry(builtin()...) }

// NewRegistry returns a registry of the given kinds (tests add their own).
func NewRegistry(kinds ...Kind) *Registry {
	r := &Registry{kinds: make(map[string]Kind, len(kinds))}
	for _, k := range kinds {
		r.kinds[k.Name] = k
	}
	return r
}

// Lookup finds a kind by its plan key.
func (r *Registry) Lookup(name string) (Kind, bool) {
	k, ok := r.kinds[name]
	return k, ok
}

// Kinds lists the kinds sorted by name.
func (r *Registry) Kinds() []Kind {
	out := make([]Kind, 0, len(r.kinds))
	for _, k := range r.kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
