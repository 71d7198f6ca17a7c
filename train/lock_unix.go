//go:build unix

package train

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockDir takes an exclusive lock on dir/.gotrain.lock so that two runs
// never write checkpoints and metrics into the same directory at once. The
// lock goes with the process, however it ends.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".gotrain.lock"), os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o644) // a planted link cannot create a file elsewhere
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("train: another run is writing to %s", dir)
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}
