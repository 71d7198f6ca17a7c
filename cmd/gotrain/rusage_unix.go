//go:build unix

package main

import (
	"runtime"
	"syscall"
	"time"
)

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSSGiB is the process's peak resident set size (0 where unknown).
func peakRSSGiB() float64 {
	var ru syscall.Rusage
	if runtime.GOOS != "linux" || syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Maxrss) / (1 << 20) // KiB on Linux
}
