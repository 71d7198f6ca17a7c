package kernels

import (
	"os"
	"runtime"
	"strconv"
)

// MaxThreads bounds the worker count (GOTRAIN_THREADS, SetThreads): far above
// any CPU, and a hostile value cannot spawn millions of goroutines.
const MaxThreads = 4096

// envThreads reads GOTRAIN_THREADS, defaulting to runtime.NumCPU().
func envThreads() int {
	if s := os.Getenv("GOTRAIN_THREADS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return min(n, MaxThreads)
		}
	}
	return runtime.NumCPU()
}
