// Package configwatch tells when a configuration file's content changes.
// It watches the file's folder with inotify (fsnotify), which also sees a
// Kubernetes ConfigMap volume swap its ..data link and an editor write a
// new file and rename it over the old one, and re-reads the file
// periodically as a safety net (a filesystem without inotify, a lost
// event). Only a change of the content (its SHA-256) is reported, once the
// writes have settled.
package configwatch

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
)

// Defaults of Watcher's intervals.
const (
	DefaultSettle = 200 * time.Millisecond
	DefaultPoll   = 10 * time.Second
)

// Watcher watches one file.
type Watcher struct {
	Path string
	// Settle is how long the folder must be quiet after an event before
	// the file is read (DefaultSettle when 0): editors write in steps.
	Settle time.Duration
	// Poll is how often the file is read whatever happens (DefaultPoll
	// when 0).
	Poll time.Duration
	Log  zerolog.Logger

	watching func() // called once the folder is watched (tests)
}

// Sum is a file content's SHA-256.
type Sum [sha256.Size]byte

// Read returns the file's content hash; ok is false when it cannot be
// read (it may be being replaced).
func Read(path string) (sum Sum, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Sum{}, false
	}
	return sha256.Sum256(data), true
}

// Run reports on changed (without blocking: a pending report covers the
// next ones) every time the file's content differs from the last content
// seen, starting from base, until ctx ends.
func (w Watcher) Run(ctx context.Context, base Sum, changed chan<- struct{}) {
	settle, poll := w.Settle, w.Poll
	if settle <= 0 {
		settle = DefaultSettle
	}
	if poll <= 0 {
		poll = DefaultPoll
	}
	last := base
	check := func() {
		sum, ok := Read(w.Path)
		if !ok || sum == last {
			return
		}
		last = sum
		select {
		case changed <- struct{}{}:
		default:
		}
	}

	var events <-chan fsnotify.Event
	var errs <-chan error
	if fw, err := fsnotify.NewWatcher(); err != nil {
		w.Log.Warn().Err(err).Str("config", w.Path).Stringer("every", poll).Msg("cannot watch the config file; reading it periodically instead")
	} else {
		defer fw.Close()
		if err := fw.Add(filepath.Dir(w.Path)); err != nil {
			w.Log.Warn().Err(err).Str("config", w.Path).Stringer("every", poll).Msg("cannot watch the config file's folder; reading it periodically instead")
		} else {
			events, errs = fw.Events, fw.Errors
			if w.watching != nil {
				w.watching()
			}
		}
	}

	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			quiet.Reset(settle)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.Log.Debug().Err(err).Str("config", w.Path).Msg("config file watch")
			quiet.Reset(settle) // an overflow may have lost the event that mattered
		case <-quiet.C:
			check()
		case <-tick.C:
			check()
		}
	}
}
