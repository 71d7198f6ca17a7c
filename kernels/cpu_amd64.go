package kernels

import "golang.org/x/sys/cpu"

// levels lists the levels this CPU supports, fastest first.
func levels() []*impl {
	var ls []*impl
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ls = append(ls, avx512Impl())
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ls = append(ls, avx2Impl)
	}
	return append(ls, genericImpl)
}
