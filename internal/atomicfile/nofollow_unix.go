//go:build unix

package atomicfile

import "syscall"

const oNoFollow = syscall.O_NOFOLLOW
