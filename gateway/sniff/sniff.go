// Package sniff finds the media type of an uploaded file from its bytes
// (magic numbers), never from its name or the client's claim. It knows the
// types the gateway accepts for attachments: PDF, JPEG, PNG, and two
// zip-based office formats (DOCX, ODT), whose container it opens with
// bounded reads and refuses when it looks like a zip bomb, without
// inflating anything but the few bytes of an ODT's "mimetype" entry.
package sniff

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"path"
	"strings"
)

// The supported media types.
const (
	PDF  = "application/pdf"
	JPEG = "image/jpeg"
	PNG  = "image/png"
	DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	ODT  = "application/vnd.oasis.opendocument.text"
	// Zip is what the magic bytes of a zip container say; Zip finds which
	// office format (if any) it holds.
	Zip = "application/zip"
)

// Type is a supported media type: its short name for people and the file
// name extensions that belong to it.
type Type struct {
	Media, Name string
	Extensions  []string
}

// Types are the supported media types.
var Types = []Type{
	{PDF, "PDF", []string{".pdf"}},
	{JPEG, "JPEG", []string{".jpg", ".jpeg"}},
	{PNG, "PNG", []string{".png"}},
	{DOCX, "Word (DOCX)", []string{".docx"}},
	{ODT, "OpenDocument (ODT)", []string{".odt"}},
}

// Lookup returns the supported type with media type m.
func Lookup(m string) (Type, bool) {
	for _, t := range Types {
		if t.Media == m {
			return t, true
		}
	}
	return Type{}, false
}

// HeadSize is how many leading bytes Head needs.
const HeadSize = 16

// Head returns the media type the first bytes of a file say: PDF, JPEG,
// PNG, Zip (look inside with Container), or "" for anything else.
func Head(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("%PDF-")):
		return PDF
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return JPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return PNG
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return Zip
	}
	return ""
}

// ExtensionFits reports whether a file name's extension does not
// contradict media type m: true when the extension belongs to m or to no
// supported type at all (no extension, ".scan"); false for "plan.pdf"
// holding a PNG.
func ExtensionFits(name, m string) bool {
	ext := strings.ToLower(path.Ext(name))
	if ext == "" {
		return true
	}
	for _, t := range Types {
		for _, e := range t.Extensions {
			if e == ext {
				return t.Media == m
			}
		}
	}
	return true
}

// Limits on what Container reads of a zip file.
const (
	MaxZipEntries      = 1000     // entries in the central directory
	MaxZipDirectory    = 1 << 20  // bytes of the central directory
	MaxZipUncompressed = 64 << 20 // declared uncompressed bytes of all entries
	MaxZipRatio        = 100      // declared uncompressed / compressed bytes of one entry
)

// Container errors.
var (
	ErrNotZip  = errors.New("sniff: not a readable zip container")
	ErrZipBomb = errors.New("sniff: zip container over the limits (entries, directory size, uncompressed size or ratio)")
)

// Container finds which supported office format a zip file of size bytes
// holds (DOCX or ODT), reading it through r at random offsets: first the
// end-of-directory record (the last 64 KiB at most), to refuse a directory
// with too many entries or too many bytes before reading it, then the
// directory, whose declared sizes must stay within MaxZipUncompressed and
// MaxZipRatio. Nothing is inflated except at most 64 bytes of an ODT's
// "mimetype" entry. "" with no error: a sound zip of another kind.
func Container(r io.ReaderAt, size int64) (string, error) {
	const eocdLen = 22
	if size < eocdLen {
		return "", ErrNotZip
	}
	tail := min(size, eocdLen+65535)
	buf := make([]byte, tail)
	if _, err := r.ReadAt(buf, size-tail); err != nil && err != io.EOF {
		return "", err
	}
	at := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if at < 0 || len(buf)-at < eocdLen {
		return "", ErrNotZip
	}
	eocd := buf[at:]
	entries := binary.LittleEndian.Uint16(eocd[10:])
	dirSize := binary.LittleEndian.Uint32(eocd[12:])
	dirOff := binary.LittleEndian.Uint32(eocd[16:])
	if entries == 0xFFFF || dirOff == 0xFFFFFFFF || dirSize == 0xFFFFFFFF {
		return "", ErrZipBomb // zip64: no office document of the sizes accepted needs it
	}
	if entries > MaxZipEntries || dirSize > MaxZipDirectory {
		return "", ErrZipBomb
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return "", ErrNotZip
	}
	if len(zr.File) > MaxZipEntries {
		return "", ErrZipBomb
	}
	var total uint64
	names := map[string]*zip.File{}
	for _, f := range zr.File {
		total += f.UncompressedSize64
		if total > MaxZipUncompressed || f.UncompressedSize64 > MaxZipUncompressed {
			return "", ErrZipBomb
		}
		if f.UncompressedSize64 > 1024 && f.UncompressedSize64/max(f.CompressedSize64, 1) > MaxZipRatio {
			return "", ErrZipBomb
		}
		names[f.Name] = f
	}
	if f := names["mimetype"]; f != nil && f.UncompressedSize64 <= 64 {
		rc, err := f.Open()
		if err != nil {
			return "", ErrNotZip
		}
		b, err := io.ReadAll(io.LimitReader(rc, 64))
		rc.Close()
		if err == nil && string(b) == ODT {
			return ODT, nil
		}
	}
	if names["[Content_Types].xml"] != nil && names["word/document.xml"] != nil {
		return DOCX, nil
	}
	return "", nil
}
