package steps

// NopProgress is a Progress that reports nothing: the runner's default
// when no one watches, and what tests use.
type NopProgress struct{}

// Start returns a Bar that ignores everything.
func (NopProgress) Start(Task) Bar { return nopBar{} }

type nopBar struct{}

func (nopBar) Add(int64)  {}
func (nopBar) Done(error) {}

// progressOf returns rt.Progress, or NopProgress for a Runtime built by
// hand (tests, tools) that left it nil.
func progressOf(rt *Runtime) Progress {
	if rt.Progress == nil {
		return NopProgress{}
	}
	return rt.Progress
}
