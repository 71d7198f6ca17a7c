//go:build !unix

package main

// cpuSeconds is unknown here: the CPU-time rates of the benchmarks read 0.
func cpuSeconds() float64 { return 0 }

// peakRSSGiB is unknown here.
func peakRSSGiB() float64 { return 0 }

// rssMiB is unknown here.
func rssMiB() float64 { return 0 }

// loadAverage is unknown here.
func loadAverage() float64 { return 0 }
