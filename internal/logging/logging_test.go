package logging

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal, or skips the test
// where the machine has none.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here (/dev/ptmx: %v)", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("naming the pty: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty's terminal end: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptm, pts
}

// The console format is coloured on a terminal only: a file or a pipe
// (a log file, journald, kubectl logs) gets plain text.
func TestConsoleColoursOnlyOnATerminal(t *testing.T) {
	const esc = "\x1b["
	var buf bytes.Buffer
	log, err := New("info", "console", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Warn().Str("pool", "default").Msg("provider unreachable")
	if strings.Contains(buf.String(), esc) || !strings.Contains(buf.String(), "provider unreachable") {
		t.Errorf("console log to a buffer: %q", buf.String())
	}

	file, err := os.Create(t.TempDir() + "/daemon.log")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	log, _ = New("info", "console", file)
	log.Warn().Msg("to a file")
	if b, _ := os.ReadFile(file.Name()); strings.Contains(string(b), esc) || !strings.Contains(string(b), "to a file") {
		t.Errorf("console log to a file: %q", b)
	}

	ptm, pts := openPTY(t)
	if !IsTerminal(pts) || IsTerminal(file) {
		t.Fatalf("IsTerminal: pty %v, file %v", IsTerminal(pts), IsTerminal(file))
	}
	log, _ = New("info", "console", pts)
	log.Warn().Msg("to a terminal")
	got := make([]byte, 4096)
	if err := ptm.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		t.Fatal(err)
	}
	n, err := ptm.Read(got)
	if err != nil {
		t.Fatalf("reading the terminal: %v", err)
	}
	if !strings.Contains(string(got[:n]), esc) {
		t.Errorf("console log to a terminal has no colour: %q", got[:n])
	}
}

func TestNewRefusesUnknownFormatsAndLevels(t *testing.T) {
	if _, err := New("info", "yaml", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `log.format: must be json or console (got "yaml")`) {
		t.Errorf("format yaml: %v", err)
	}
	if _, err := New("loud", "json", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("level loud: %v", err)
	}
}
