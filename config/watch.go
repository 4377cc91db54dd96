package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher loads a config directory, then loads it again whenever it
// changes: a file written, created, removed or renamed below it, a
// ConfigMap mount swapping its ..data symlink, or a value on Trigger
// (SIGHUP). Events are coalesced for at most Debounce.
type Watcher struct {
	Dir  string
	Opts Options
	// Debounce is how long events are coalesced; zero means 200ms.
	Debounce time.Duration
	// Trigger forces a reload when it receives; nil means none.
	Trigger <-chan struct{}
	// OnLoad is called after every load with its result; err is set only
	// when the directory itself could not be read. It must not be nil.
	OnLoad func(set *Set, diags Diagnostics, err error)
	// OnWatchError reports a problem with the file watch itself; nil
	// means ignore.
	OnWatchError func(error)
}

// Run loads once, then watches until ctx is done. It returns an error only
// when the watch cannot be set up.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	debounce := w.Debounce
	if debounce == 0 {
		debounce = 200 * time.Millisecond
	}
	watched := map[string]bool{}
	load := func() {
		set, diags, err := Load(w.Dir, w.Opts)
		w.sync(fw, watched)
		w.OnLoad(set, diags, err)
	}
	load()
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if timer == nil {
				timer = time.After(debounce)
			}
		case err, ok := <-fw.Errors:
			if ok && w.OnWatchError != nil {
				w.OnWatchError(err)
			}
		case <-w.Trigger:
			timer = nil
			load()
		case <-timer:
			timer = nil
			load()
		}
	}
}

// sync watches the directory, every subdirectory the loader reads, and the
// real directories that symlinked files point into.
func (w *Watcher) sync(fw *fsnotify.Watcher, watched map[string]bool) {
	want := map[string]bool{w.Dir: true}
	if st, err := os.Stat(w.Dir); err == nil && !st.IsDir() {
		want = map[string]bool{filepath.Dir(w.Dir): true}
	}
	_ = filepath.WalkDir(w.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if p != w.Dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			want[p] = true
		}
		return nil
	})
	if files, err := ConfigFiles(w.Dir); err == nil {
		for _, f := range files {
			if real, err := filepath.EvalSymlinks(f); err == nil {
				want[filepath.Dir(real)] = true
			}
		}
	}
	for d := range watched {
		if !want[d] {
			_ = fw.Remove(d)
			delete(watched, d)
		}
	}
	for d := range want {
		if watched[d] {
			continue
		}
		if err := fw.Add(d); err == nil {
			watched[d] = true
		} else if w.OnWatchError != nil {
			w.OnWatchError(err)
		}
	}
}
