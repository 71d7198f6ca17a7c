//go:build unix

package hub

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile takes an exclusive flock on path (creating it), the same lock
// huggingface_hub's filelock takes on <cache>/.locks/<repo>/<etag>.lock, so
// gotrain and Python never write the same .incomplete blob at once.
func lockFile(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644) // no file created through a planted link
	if err != nil {
		return nil, fmt.Errorf("hub: lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("hub: lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// oNoFollow keeps opens from following a planted symlink.
const oNoFollow = syscall.O_NOFOLLOW
