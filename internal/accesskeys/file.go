package accesskeys

import (
	"context"
	"log/slog"
	"time"

	"github.com/otpd/otpd/internal/livefile"
)

// File keeps a Ring equal to the pairs of a shared-credentials file, read
// again at every Reload, the way livefile reads files: a change is taken
// once two reads a moment apart agree, and a file that cannot be read,
// holds a mistake or keeps changing changes nothing (the ring keeps the
// pairs read before, and the problem is logged once). A File is safe for
// concurrent use.
type File struct {
	live *livefile.File[[]Pair]
	ring *Ring
}

// Open reads the pairs of the file at path, which must be a regular file
// (or a link to one) holding at least one pair, into a new Ring. log
// receives what later Reloads find: the access key IDs added and removed,
// or the file's problem; nil logs nothing.
func Open(path string, log *slog.Logger) (*File, error) {
	f := &File{}
	live, err := livefile.Open(livefile.Spec[[]Pair]{
		Name:  "the access keys file",
		Kept:  "the keys read from it before are still accepted",
		Paths: []string{path},
		Parse: func(contents [][]byte) ([]Pair, error) { return Parse(contents[0]) },
		Changed: func(log *slog.Logger, _, pairs []Pair) {
			added, removed := f.ring.Replace(pairs)
			log.Info("access keys read again", "file", path, "pairs", len(f.ring.Pairs()), "added", added, "removed", removed)
		},
		Log: log,
	})
	if err != nil {
		return nil, err
	}
	f.live, f.ring = live, NewRing(live.Value())
	return f, nil
}

// Path is the file's name, as given to Open.
func (f *File) Path() string { return f.live.Paths()[0] }

// Ring is the set of pairs read from the file.
func (f *File) Ring() *Ring { return f.ring }

// Healthy reports whether the last Reload could use the file: false while
// it cannot be read, holds a mistake or keeps changing, when the ring keeps
// the pairs read before.
func (f *File) Healthy() bool { return f.live.Healthy() }

// Reload reads the file again and takes what changed (livefile.File.Reload).
func (f *File) Reload() { f.live.Reload() }

// Watch calls Reload every interval until ctx is done.
func (f *File) Watch(ctx context.Context, interval time.Duration) { f.live.Watch(ctx, interval) }
