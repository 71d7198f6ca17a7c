package kernels

import "sync"

// Parallel splits [0,n) into contiguous chunks and runs fn on them concurrently,
// returning when all are done.
// TODO(kernels): persistent worker pool.
func Parallel(n int, fn func(lo, hi int)) {
	const workers = 2
	if n < workers {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() { defer wg.Done(); fn(lo, hi) }()
	}
	wg.Wait()
}
