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
// again at every Reload. A change is taken once a second read, a moment
// after the first, finds the same content, so that a file caught while it
// is written is not taken for the operator's intent. A file that cannot be
// read, holds a mistake or keeps changing changes nothing: the ring keeps
// the pairs last read, and the problem is logged once, until it changes.
// A File is safe for concurrent use.
type File struct {
	path string
	ring *Ring
	log  *slog.Logger
	// pause waits between a read that found a change and the read that
	// confirms it; nil means sleeping for confirmDelay.
	pause func()

	mu        sync.Mutex // held by Reload
	last      []byte     // the content whose pairs the ring holds
	problem   string     // the problem last logged, "" when the ring matches the file
	unsettled int        // Reloads in a row whose two reads differed
	healthy   atomic.Bool
}

// confirmDelay is how long after a read that found a change the file is
// read again to confirm it: far longer than writing a file of keys takes.
const confirmDelay = 250 * time.Millisecond

// unsettledLimit is how many Reloads in a row may find the file changing
// under them before that is a problem.
const unsettledLimit = 3

// Open reads the pairs of the file at path, which must be a regular file
// (or a link to one) holding at least one pair, into a new Ring. log
// receives what later Reloads find.
func Open(path string, log *slog.Logger) (*File, error) {
	data, err := readRegular(path)
	if err != nil {
		return nil, err
	}
	pairs, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f := &File{path: path, ring: NewRing(pairs), log: log, last: data}
	f.healthy.Store(true)
	return f, nil
}

// Path is the file's name, as given to Open.
func (f *File) Path() string { return f.path }

// Ring is the set of pairs read from the file.
func (f *File) Ring() *Ring { return f.ring }

// Healthy reports whether the last Reload could use the file: false while
// it cannot be read, holds a mistake or keeps changing, when the ring keeps
// the pairs read before.
func (f *File) Healthy() bool { return f.healthy.Load() }

// Reload reads the file again. If it differs from what the ring holds, it
// is read once more a moment later: when both reads agree, its pairs become
// the ring's, logging the access key IDs added and removed, or its mistake
// is logged; when they differ (the file is being written), the change waits
// for the next Reload.
func (f *File) Reload() {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := readRegular(f.path)
	if err == nil && bytes.Equal(data, f.last) {
		f.unsettled = 0
		f.healthy.Store(true)
		if f.problem != "" {
			f.problem = ""
			f.log.Info("the access keys file is as it was: the keys read from it before are accepted", "file", f.path)
		}
		return
	}
	if f.pause != nil {
		f.pause()
	} else {
		time.Sleep(confirmDelay)
	}
	again, errAgain := readRegular(f.path)
	if !bytes.Equal(data, again) || errorText(err) != errorText(errAgain) {
		if f.unsettled++; f.unsettled >= unsettledLimit {
			f.refuse(fmt.Sprintf("%s keeps changing: two reads %v apart differed at %d reads in a row", f.path, confirmDelay, unsettledLimit))
		}
		return
	}
	f.unsettled = 0
	if err != nil {
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

// errorText is err's message, "" for none.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// readRegular returns the content of the file at path, which must be a
// regular file (or a link to one): a file of keys is read again and again,
// which would block on a pipe. The file is opened without waiting for a
// writer, and its type checked on what was opened.
func readRegular(path string) ([]byte, error) {
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case fi.IsDir():
		return nil, fmt.Errorf("%s is a directory, not a regular file", path)
	case !fi.Mode().IsRegular():
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
