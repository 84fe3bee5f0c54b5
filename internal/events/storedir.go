package events

import (
	"fmt"
	"os"
	"path/filepath"
)

// checkWritable says plainly when the embedded server's store directory
// cannot be written (read-only mount, wrong owner), instead of the
// server's failure to start being taken for a port in use.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".hodei-write-check-*")
	if err != nil {
		return fmt.Errorf("nats.embedded.store_dir %s is not writable (read-only file system or permissions?): %w", dir, err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("ok"))
	cerr := f.Close()
	rerr := os.Remove(filepath.Clean(name))
	if werr != nil || cerr != nil || rerr != nil {
		return fmt.Errorf("nats.embedded.store_dir %s is not writable: %v %v %v", dir, werr, cerr, rerr)
	}
	return nil
}
