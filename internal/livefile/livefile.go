// Package livefile keeps a value read from files equal to those files while
// otpd runs, so that an operator can replace them without a restart: the
// access keys clients sign with, and the certificate otpd serves TLS with.
//
// A File reads its files again at every Reload (Watch calls it on a tick).
// A change is taken only once a second read, a moment after the first,
// finds the same content, so that files caught while they are written are
// not taken for the operator's intent; then it is parsed, and what parses
// becomes the value. Files that cannot be read, do not parse or keep
// changing change nothing: the value stays what was read before, Healthy
// reports false, and the problem is logged once, until it changes.
package livefile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Spec says which files a File reads and what it makes of them.
type Spec[T any] struct {
	// Name is what the files are, for the log: "the access keys file".
	Name string
	// Kept is what goes on while they cannot be used, for the log: "the
	// keys read from it before are still accepted".
	Kept string
	// Paths are the files, each a regular file or a link to one.
	Paths []string
	// Parse makes the value of the files' contents, in the order of
	// Paths. Its errors must never quote a secret the files hold.
	Parse func(contents [][]byte) (T, error)
	// Changed, if not nil, is called by a Reload that took a change of
	// the files' contents, with the File's log (Log, or one that discards)
	// and the values before and after, once the new one is the File's; the two may mean the same (a comment changed).
	// It runs while Reload holds the File: it must not call Reload.
	Changed func(log *slog.Logger, before, after T)
	// Log receives what Reloads find; nil logs nothing.
	Log *slog.Logger
}

// File is a value read from files, and read again at every Reload. A File
// is safe for concurrent use.
type File[T any] struct {
	spec  Spec[T]
	files string // the Paths, for messages
	log   *slog.Logger
	value atomic.Pointer[T]
	// healthy is apart from problem, which Reload guards with mu, so that
	// Healthy never waits behind a Reload's pause.
	healthy atomic.Bool
	// pause waits between a read that found a change and the read that
	// confirms it; nil means sleeping for confirmDelay.
	pause func()

	mu        sync.Mutex // held by Reload
	last      [][]byte   // the contents the value was made of
	problem   string     // the problem last logged, "" when the value matches the files
	unsettled int        // Reloads in a row whose two reads differed
}

// confirmDelay is how long after a read that found a change the files are
// read again to confirm it: far longer than writing a file of keys or a
// certificate takes.
const confirmDelay = 250 * time.Millisecond

// unsettledLimit is how many Reloads in a row may find the files changing
// under them before that is a problem.
const unsettledLimit = 3

// Open reads and parses the files of spec. Its errors name the files.
func Open[T any](spec Spec[T]) (*File[T], error) {
	contents, err := readAll(spec.Paths)
	if err != nil {
		return nil, err
	}
	value, err := spec.Parse(contents)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", files(spec.Paths), err)
	}
	log := spec.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &File[T]{spec: spec, files: files(spec.Paths), log: log, last: contents}
	f.value.Store(&value)
	f.healthy.Store(true)
	return f, nil
}

// Value is what was last read from the files.
func (f *File[T]) Value() T { return *f.value.Load() }

// Paths are the files, as given to Open.
func (f *File[T]) Paths() []string { return f.spec.Paths }

// Healthy reports whether the files could be used when last read to the
// end of a Reload: false while they cannot be read, do not parse or keep
// changing, when the value stays what was read before. (A Reload that
// found them changing under it, fewer than a few times in a row, leaves
// Healthy as it was.)
func (f *File[T]) Healthy() bool { return f.healthy.Load() }

// Reload reads the files again. If they differ from what the value was
// made of, they are read once more a moment later: when both reads agree,
// what they parse to becomes the value (and Changed is called), or the
// reason they do not is logged; when the reads differ (the files are being
// written), the change waits for the next Reload.
func (f *File[T]) Reload() {
	f.mu.Lock()
	defer f.mu.Unlock()
	contents, err := readAll(f.spec.Paths)
	if err == nil && equal(contents, f.last) {
		f.unsettled = 0
		f.healthy.Store(true)
		if f.problem != "" {
			f.problem = ""
			f.log.Info(f.spec.Name+" is as it was before its problem: "+f.spec.Kept, "file", f.files)
		}
		return
	}
	if f.pause != nil {
		f.pause()
	} else {
		time.Sleep(confirmDelay)
	}
	again, errAgain := readAll(f.spec.Paths)
	if !equal(contents, again) || errorText(err) != errorText(errAgain) {
		if f.unsettled++; f.unsettled >= unsettledLimit {
			f.refuse(fmt.Sprintf("changing at every read: two reads %v apart differed at %d reads in a row", confirmDelay, unsettledLimit))
		}
		return
	}
	f.unsettled = 0
	if err != nil {
		f.refuse(err.Error())
		return
	}
	value, err := f.spec.Parse(contents)
	if err != nil {
		f.refuse(err.Error())
		return
	}
	before := f.Value()
	f.value.Store(&value)
	f.last, f.problem = contents, ""
	f.healthy.Store(true)
	if f.spec.Changed != nil {
		f.spec.Changed(f.log, before, value)
	}
}

// refuse logs problem, once until it changes, with the files' names.
func (f *File[T]) refuse(problem string) {
	f.healthy.Store(false)
	if problem == f.problem {
		return
	}
	f.problem = problem
	f.log.Error(f.spec.Name+" cannot be used: "+f.spec.Kept, "file", f.files, "err", problem)
}

// Watch calls Reload every interval until ctx is done.
func (f *File[T]) Watch(ctx context.Context, interval time.Duration) {
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

// files names the files at paths in a message.
func files(paths []string) string { return strings.Join(paths, ", ") }

// equal reports whether two reads found the same contents.
func equal(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, func(x, y []byte) bool { return string(x) == string(y) })
}

// errorText is err's message, "" for none.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// readAll returns the contents of the files at paths, in their order.
func readAll(paths []string) ([][]byte, error) {
	contents := make([][]byte, len(paths))
	for i, path := range paths {
		data, err := readRegular(path)
		if err != nil {
			return nil, err
		}
		contents[i] = data
	}
	return contents, nil
}

// readRegular returns the content of the file at path, which must be a
// regular file (or a link to one): a file read again and again would block
// on a pipe. The file is opened without waiting for a writer, and its type
// checked on what was opened.
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
