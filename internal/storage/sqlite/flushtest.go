package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// flushTestSpan is how much of its file MeasureFlushes overwrites in turn:
// as much as the log holds before it starts over.
const flushTestSpan = walRestartPages * 4096

// MeasureFlushes measures the disk under dir as the writer uses it: it
// overwrites size bytes of a file and flushes them as the writer flushes
// its log (fdatasync on Linux), again and again until d has passed, and
// returns how long each flush took: at least one, unless ctx ends first,
// when it returns ctx's error. The file, of about 16 MiB, is written in
// full and flushed first, so that the overwrites change no metadata, as
// the log's do not once it has reached its size; it is removed before
// MeasureFlushes returns.
func MeasureFlushes(ctx context.Context, dir string, size int, d time.Duration) (flushes []time.Duration, err error) {
	if size < 1 || d <= 0 {
		return nil, fmt.Errorf("storage/sqlite: measure flushes: size %d and duration %s must be positive", size, d)
	}
	f, err := os.CreateTemp(dir, "otpd-flush-test-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("storage/sqlite: measure flushes: %w", err)
	}
	defer func() {
		err = errors.Join(err, f.Close(), os.Remove(f.Name()))
		if err != nil {
			err = fmt.Errorf("storage/sqlite: measure flushes: %w", err)
		}
	}()
	span := max(flushTestSpan/size, 4) * size
	page := make([]byte, size)
	for off := 0; off < span; off += size {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := f.WriteAt(page, int64(off)); err != nil {
			return nil, err
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	end := time.Now().Add(d)
	for off := 0; ; off = (off + size) % span {
		if err := ctx.Err(); err != nil {
			return flushes, err
		}
		page[0]++ // a change to write, as the log's frames are
		if _, err := f.WriteAt(page, int64(off)); err != nil {
			return flushes, err
		}
		start := time.Now()
		if err := syncData(f); err != nil {
			return flushes, err
		}
		flushes = append(flushes, time.Since(start))
		if !time.Now().Before(end) {
			return flushes, nil
		}
	}
}
