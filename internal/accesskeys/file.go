package accesskeys

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// File keeps a Ring equal to the pairs of a shared-credentials file, read
// again at every Reload. A file that cannot be read or holds a mistake
// changes nothing: the ring keeps the pairs last read, and the problem is
// logged once, until it changes. A File is safe for concurrent use.
type File struct {
	path string
	ring *Ring
	log  *slog.Logger

	mu      sync.Mutex // held by Reload
	last    []byte     // the content whose pairs the ring holds
	problem string     // the problem last logged, "" when the ring matches the file
}

// Open reads the pairs of the file at path, which must be readable and
// hold at least one pair, into a new Ring. log receives what later Reloads
// find.
func Open(path string, log *slog.Logger) (*File, error) {
	data, err := read(path)
	if err != nil {
		return nil, err
	}
	pairs, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &File{path: path, ring: NewRing(pairs), log: log, last: data}, nil
}

// Path is the file's name, as given to Open.
func (f *File) Path() string { return f.path }

// Ring is the set of pairs read from the file.
func (f *File) Ring() *Ring { return f.ring }

// Reload reads the file again and, if it changed and holds no mistake,
// makes its pairs the ring's, logging the access key IDs added and removed.
// A file replaced in one step (written beside it and renamed over it, as
// Kubernetes updates a mounted Secret) is never seen half written.
func (f *File) Reload() {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := read(f.path)
	if err != nil {
		f.refuse(err.Error())
		return
	}
	if bytes.Equal(data, f.last) {
		if f.problem != "" {
			f.problem = ""
			f.log.Info("the access keys file is usable again; its keys are those accepted before", "file", f.path)
		}
		return
	}
	pairs, err := Parse(data)
	if err != nil {
		f.refuse(fmt.Sprintf("%s: %v", f.path, err))
		return
	}
	f.last, f.problem = data, ""
	added, removed := f.ring.Replace(pairs)
	f.log.Info("access keys read again", "file", f.path, "pairs", len(f.ring.Pairs()), "added", added, "removed", removed)
}

// read returns the content of the file at path, which must be a regular
// file (or a link to one): it is read again at every Reload, which would
// block on a pipe.
func read(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: it is read again while otpd runs, which a pipe or a device cannot be", path)
	}
	return os.ReadFile(path)
}

// refuse logs problem, once until it changes.
func (f *File) refuse(problem string) {
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
