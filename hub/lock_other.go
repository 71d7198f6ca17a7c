//go:build !unix

package hub

// lockFile is a no-op where flock is unavailable: concurrent downloads of the
// same blob by two processes are then not serialized.
func lockFile(path string) (unlock func(), err error) {
	return func() {}, nil
}

// oNoFollow: no O_NOFOLLOW here.
const oNoFollow = 0
