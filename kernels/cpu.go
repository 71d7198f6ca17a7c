package kernels

import (
	"os"
	"runtime"
	"strconv"
)

// envThreads reads GOTRAIN_THREADS, defaulting to runtime.NumCPU().
func envThreads() int {
	if s := os.Getenv("GOTRAIN_THREADS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return runtime.NumCPU()
}
