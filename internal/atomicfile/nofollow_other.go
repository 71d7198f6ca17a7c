//go:build !unix

package atomicfile

const oNoFollow = 0
