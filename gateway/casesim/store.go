package casesim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// store is the append-only JSON-lines data file. Each line is the full state
// of one case after a delivery; on load, the last line of a case wins.
type store struct {
	f    *os.File
	size int64 // bytes of complete, acknowledged lines
	// broken is set when a failed write could not be undone; every later
	// write fails rather than leave a line that was never acknowledged in
	// the middle of the file.
	broken error
}

// openStore opens (creating it if needed) the data file and returns the
// cases it holds. A last line without its newline is the trace of a write
// that was never acknowledged (the process died during it): it is cut off.
// Any other line that cannot be read is an error.
func openStore(path string, log *slog.Logger) (*store, []*Case, error) {
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)
	// The file holds personal data: readable by its owner only.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	if created {
		// Make the new directory entry durable too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, nil, err
		}
	}

	var (
		cases []*Case
		good  int64
		lineN int
	)
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			lineN++
			trimmed := bytes.TrimSpace(line)
			if len(trimmed) > 0 {
				c := new(Case)
				if err := json.Unmarshal(trimmed, c); err != nil {
					f.Close()
					return nil, nil, fmt.Errorf("%s:%d: not a case record", path, lineN)
				}
				cases = append(cases, c)
			}
			good += int64(len(line))
		} else if len(line) > 0 {
			log.Warn("data file ends in an incomplete line; it is removed", "file", path, "bytes", len(line))
			if err := f.Truncate(good); err != nil {
				f.Close()
				return nil, nil, err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, nil, err
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	return &store{f: f, size: good}, cases, nil
}

// append writes c as one line and syncs it to stable storage.
func (st *store) append(c *Case) error {
	if st.broken != nil {
		return st.broken
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := st.f.Write(b); err != nil {
		// Undo the partial line, so that the case number it carries can be
		// given out again without a clash on reload.
		if terr := st.f.Truncate(st.size); terr != nil {
			st.broken = fmt.Errorf("data file is in an unknown state after a failed write: %w", err)
		}
		return err
	}
	if err := st.f.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the pages: no
		// later write can be trusted to be durable.
		_ = st.f.Truncate(st.size)
		st.broken = fmt.Errorf("data file could not be synced: %w", err)
		return err
	}
	st.size += int64(len(b))
	return nil
}

func (st *store) close() error {
	return st.f.Close()
}

// syncDir fsyncs a directory so that a file created in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some platforms (and file systems) cannot sync a directory; that is
	// not a reason to refuse to start.
	_ = d.Sync()
	return nil
}
