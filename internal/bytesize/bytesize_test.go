package bytesize

import "testing"

func TestFormat(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1 KiB"},
		{1536, "1.5 KiB"},
		{12*mib + 300*1024, "12.3 MiB"},
		{512 * mib, "512 MiB"},
		{1288490189, "1.2 GiB"},
		{5 << 40, "5 TiB"},
		{1 << 62, "4 EiB"},
	} {
		if got := Format(tt.n); got != tt.want {
			t.Errorf("Format(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
