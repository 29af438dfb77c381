package gateway

import "testing"

func TestSanitizeFilename(t *testing.T) {
	long := ""
	for range 60 {
		long += "åä"
	}
	cases := []struct{ in, want string }{
		{"ritning.pdf", "ritning.pdf"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\anna\Ritning 1.pdf`, "Ritning 1.pdf"},
		{"a\x00b\u202ec.pdf", "abc.pdf"},
		{"  many   spaces\t.pdf ", "many spaces.pdf"},
		{"...", "file"},
		{"", "file"},
		{"/", "file"},
		{long + ".pdf", long[:96] + ".pdf"},
	}
	for _, c := range cases {
		if got := SanitizeFilename(c.in); got != c.want {
			t.Errorf("SanitizeFilename(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
