package configwatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

type watched struct {
	t       *testing.T
	dir     string
	path    string
	changed chan struct{}
}

// watch starts a Watcher on dir/config.yaml (a real inotify watch) with a
// long poll, so that what is seen comes from the events.
func watch(t *testing.T, path string) *watched {
	t.Helper()
	w := &watched{t: t, dir: filepath.Dir(path), path: path, changed: make(chan struct{}, 1)}
	base, _ := Read(path)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	watching := make(chan struct{})
	go func() {
		defer close(done)
		Watcher{Path: path, Settle: 20 * time.Millisecond, Poll: time.Hour, Log: zerolog.Nop(),
			watching: func() { close(watching) }}.Run(ctx, base, w.changed)
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-watching:
	case <-time.After(5 * time.Second):
		t.Fatal("the folder is not watched after 5s")
	}
	return w
}

func (w *watched) expect(what string) {
	w.t.Helper()
	select {
	case <-w.changed:
	case <-time.After(5 * time.Second):
		w.t.Fatalf("%s: no change reported within 5s", what)
	}
}

func (w *watched) expectNone(what string) {
	w.t.Helper()
	select {
	case <-w.changed:
		w.t.Fatalf("%s: a change was reported", what)
	case <-time.After(300 * time.Millisecond):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// In place writes, an editor's write-and-rename and a rewrite with the
// same content.
func TestWatcherReportsContentChanges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	write(t, path, "a: 1\n")
	w := watch(t, path)

	write(t, path, "a: 2\n")
	w.expect("file rewritten")
	write(t, path, "a: 2\n")
	w.expectNone("same content written again")
	write(t, filepath.Join(dir, "other"), "x")
	w.expectNone("another file of the folder")

	tmp := filepath.Join(dir, ".config.yaml.swp")
	write(t, tmp, "a: 3\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	w.expect("new file renamed over the old one")

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w.expectNone("file removed")
	write(t, path, "a: 3\n")
	w.expectNone("file back with the content it had")
}

// A Kubernetes ConfigMap volume: config.yaml -> ..data/config.yaml,
// ..data -> ..<timestamp>; an update writes a new timestamped folder and
// swaps ..data atomically.
func TestWatcherSeesAConfigMapUpdate(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "config.yaml"), content)
	}
	version("..v1", "max_workers: 1\n")
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), path); err != nil {
		t.Fatal(err)
	}
	w := watch(t, path)

	version("..v2", "max_workers: 2\n")
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	w.expect("..data swapped to a new version")
	if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
		t.Fatal(err)
	}
	w.expectNone("the old version removed")
}

// Without inotify events (a filesystem that has none), the periodic read
// still sees the change.
func TestWatcherPolls(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	write(t, path, "a: 1\n")
	base, _ := Read(path)
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A settle longer than the test: only the poll can report.
	go Watcher{Path: path, Settle: time.Hour, Poll: 50 * time.Millisecond, Log: zerolog.Nop()}.Run(ctx, base, changed)
	write(t, path, "a: 2\n")
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("the periodic read did not report the change")
	}
}
