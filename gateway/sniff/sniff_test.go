package sniff

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"strconv"
	"testing"
)

// zipOf builds a zip of the given entries (name -> content); stored
// entries are not compressed.
func zipOf(t testing.TB, entries []string, content func(name string) []byte, stored map[string]bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range entries {
		method := zip.Deflate
		if stored[name] {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(content(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// DOCX builds a minimal Word document container.
func DOCXBytes(t testing.TB) []byte {
	return zipOf(t, []string{"[Content_Types].xml", "word/document.xml"}, func(string) []byte { return []byte("<xml/>") }, nil)
}

type countingReaderAt struct {
	r    io.ReaderAt
	read int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.read += int64(n)
	return n, err
}

func TestHead(t *testing.T) {
	for in, want := range map[string]string{"%PDF-1.7\n": PDF, "\xFF\xD8\xFF\xE0": JPEG, "\x89PNG\r\n\x1a\n....": PNG,
		"PK\x03\x04": Zip, "GIF89a": "", "": "", "MZ\x90": "", "<html>%PDF-": ""} {
		if got := Head([]byte(in)); got != want {
			t.Errorf("Head(%q) = %q, want %q", in, got, want)
		}
	}
	if ExtensionFits("ritning.pdf", PNG) || !ExtensionFits("ritning.PDF", PDF) || !ExtensionFits("scan", PNG) || !ExtensionFits("a.tiff", PNG) {
		t.Fatal("ExtensionFits")
	}
}

func TestContainer(t *testing.T) {
	odt := zipOf(t, []string{"mimetype", "content.xml"}, func(n string) []byte {
		if n == "mimetype" {
			return []byte(ODT)
		}
		return []byte("<x/>")
	}, map[string]bool{"mimetype": true})
	plain := zipOf(t, []string{"a.txt"}, func(string) []byte { return []byte("hello") }, nil)
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{"docx": {DOCXBytes(t), DOCX}, "odt": {odt, ODT}, "other zip": {plain, ""}} {
		got, err := Container(bytes.NewReader(c.b), int64(len(c.b)))
		if err != nil || got != c.want {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	if _, err := Container(bytes.NewReader([]byte("PK\x03\x04 not really")), 16); !errors.Is(err, ErrNotZip) {
		t.Errorf("broken: %v", err)
	}
}

// A zip bomb is refused from its directory: too high a ratio (10 MB of
// zeros in ~10 kB), too many entries, too much declared in total; and the
// check reads no more than the file's tail and directory.
func TestContainerRefusesZipBombs(t *testing.T) {
	zeros := make([]byte, 10<<20)
	ratio := zipOf(t, []string{"[Content_Types].xml", "word/document.xml"}, func(n string) []byte {
		if n == "word/document.xml" {
			return zeros
		}
		return []byte("<x/>")
	}, nil)
	var many []string
	for i := range MaxZipEntries + 1 {
		many = append(many, "f"+strconv.Itoa(i))
	}
	manyZip := zipOf(t, many, func(string) []byte { return nil }, nil)
	// Declared total over the limit with each entry under the ratio:
	// random-looking data does not compress.
	big := make([]byte, 9<<20)
	for i := range big {
		big[i] = byte(i*7919 + i>>8)
	}
	var names []string
	for i := range 8 {
		names = append(names, "big"+strconv.Itoa(i))
	}
	total := zipOf(t, names, func(string) []byte { return big }, map[string]bool{"big0": true, "big1": true, "big2": true, "big3": true, "big4": true, "big5": true, "big6": true, "big7": true})
	for name, b := range map[string][]byte{"ratio": ratio, "entries": manyZip, "total": total} {
		c := &countingReaderAt{r: bytes.NewReader(b)}
		if _, err := Container(c, int64(len(b))); !errors.Is(err, ErrZipBomb) {
			t.Errorf("%s: %v", name, err)
		}
		if limit := min(int64(len(b)), 22+65535) + MaxZipDirectory; c.read > limit {
			t.Errorf("%s: read %d bytes, more than the tail and the directory (%d)", name, c.read, limit)
		}
	}
}
