package accesskeys

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// File keeps a Ring equal to the pairs of a shared-credentials file, read
// again at every Reload. A change takes effect once two Reloads in a row
// read the same content, so that a file caught half written (edited in
// place) is never taken for the operator's intent. A file that cannot be
// read or holds a mistake changes nothing: the ring keeps the pairs last
// read, and the problem is logged once, until it changes. A File is safe
// for concurrent use.
type File struct {
	path string
	ring *Ring
	log  *slog.Logger

	mu      sync.Mutex // held by Reload
	last    []byte     // the content whose pairs the ring holds
	seen    string     // what the last Reload read: the content, or its error
	problem string     // the problem last logged, "" when the ring matches the file
	healthy atomic.Bool
}

// Open reads the pairs of the file at path, which must be a regular file
// (or a link to one) holding at least one pair, into a new Ring. log
// receives what later Reloads find.
func Open(path string, log *slog.Logger) (*File, error) {
	data, err := ReadRegular(path)
	if err != nil {
		return nil, err
	}
	pairs, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f := &File{path: path, ring: NewRing(pairs), log: log, last: data, seen: string(data)}
	f.healthy.Store(true)
	return f, nil
}

// Path is the file's name, as given to Open.
func (f *File) Path() string { return f.path }

// Ring is the set of pairs read from the file.
func (f *File) Ring() *Ring { return f.ring }

// Healthy reports whether the file could be used when last read: false
// from when two Reloads in a row found it unreadable or holding a mistake
// until one finds it usable (a change waiting for the next Reload to
// confirm it is no problem).
func (f *File) Healthy() bool { return f.healthy.Load() }

// Reload reads the file again. Content that differs from what the ring
// holds is applied when the Reload before it read the same: its pairs
// become the ring's, and the access key IDs added and removed are logged;
// or, if it holds a mistake, the mistake is logged.
func (f *File) Reload() {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := ReadRegular(f.path)
	seen := string(data)
	if err != nil {
		seen = "\x00" + err.Error() // no file's content: files of pairs hold no NUL
	}
	settled := seen == f.seen
	f.seen = seen
	switch {
	case err == nil && bytes.Equal(data, f.last):
		f.healthy.Store(true)
		if f.problem != "" {
			f.problem = ""
			f.log.Info("the access keys file is as it was: the keys read from it before are accepted", "file", f.path)
		}
		return
	case !settled:
		return // read it again before acting on it
	case err != nil:
		f.refuse(err.Error())
		return
	}
	pairs, err := Parse(data)
	if err != nil {
		f.refuse(fmt.Sprintf("%s: %v", f.path, err))
		return
	}
	f.last, f.problem = data, ""
	f.healthy.Store(true)
	added, removed := f.ring.Replace(pairs)
	f.log.Info("access keys read again", "file", f.path, "pairs", len(f.ring.Pairs()), "added", added, "removed", removed)
}

// ReadRegular returns the content of the file at path, which must be a
// regular file (or a link to one): a file of keys is read again and again,
// which would block on a pipe. The file is opened without waiting for a
// writer, and its type checked on what was opened.
func ReadRegular(path string) ([]byte, error) {
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: it is read again while otpd runs, which a pipe or a device cannot be", path)
	}
	return io.ReadAll(file)
}

// refuse logs problem, once until it changes.
func (f *File) refuse(problem string) {
	f.healthy.Store(false)
	if problem == f.problem {
		return
	}
	f.problem = problem
	f.log.Error("the access keys file cannot be used: the keys read from it before are still accepted", "err", problem)
}

// Watch calls Reload every interval until ctx is done.
func (f *File) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.Reload()
	}
}
