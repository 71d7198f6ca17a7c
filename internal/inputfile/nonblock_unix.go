//go:build unix

package inputfile

import "syscall"

const oNonblock = syscall.O_NONBLOCK
