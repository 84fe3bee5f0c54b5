package events

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hodei/hodei-autoscaler/internal/config"
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

// storeHint names the fix when a stream cannot be created because the
// store has less room than nats.streams.max_bytes.
func storeHint(err error, cfg config.NATS) string {
	if !strings.Contains(strings.ToLower(err.Error()), "insufficient storage") {
		return ""
	}
	where := "the NATS server's JetStream store (max_file_store)"
	if cfg.URL == "embedded" {
		where = "the file system of nats.embedded.store_dir " + cfg.Embedded.StoreDir
	}
	return fmt.Sprintf(" (%s has less room than nats.streams.max_bytes %d bytes for each of the two streams: lower nats.streams.max_bytes or give the store more space)", where, int64(cfg.Streams.MaxBytes))
}
