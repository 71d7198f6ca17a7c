//go:build !amd64 || purego

package kernels

// simdLevels is empty: off amd64, or built with -tags purego, only the
// pure-Go twins exist.
func simdLevels() []*impl { return nil }
