//go:build !purego

package kernels

import "golang.org/x/sys/cpu"

// simdLevels builds the assembly levels this CPU supports, fastest first,
// from the CPU features read once.
func simdLevels() []*impl {
	x := &cpu.X86
	var ls []*impl
	if x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX2 && x.HasFMA {
		ls = append(ls, avx512Impl(x.HasAVX512BF16))
	}
	if x.HasAVX2 && x.HasFMA {
		ls = append(ls, avx2Impl())
	}
	return ls
}
