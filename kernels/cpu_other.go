//go:build !amd64

package kernels

// levels lists the supported levels, fastest first.
func levels() []*impl { return []*impl{genericImpl} }
