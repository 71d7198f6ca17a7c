package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The worker pool: goroutines started once and fed jobs over a channel. A
// job is a range [0,n) cut into chunks; workers and the calling goroutine
// claim chunks with an atomic counter, so the caller can always finish a job
// alone. That makes nested Parallel calls safe (no deadlock when every
// worker is busy) and keeps the per-call cost at one channel send per helper.

// job is one Parallel call in flight.
type job struct {
	fn     func(lo, hi int)
	n      int
	chunks int
	next   atomic.Int64 // next chunk to claim
	wg     sync.WaitGroup
}

// run claims and runs chunks until none are left.
func (j *job) run() {
	for {
		c := int(j.next.Add(1) - 1)
		if c >= j.chunks {
			return
		}
		lo, hi := j.n*c/j.chunks, j.n*(c+1)/j.chunks
		j.fn(lo, hi)
		j.wg.Done()
	}
}

// pool is the process-wide set of workers.
var pool struct {
	mu      sync.Mutex
	threads atomic.Int64 // goroutines a Parallel call uses, including the caller
	started int          // helper goroutines started so far
	jobs    chan *job
}

func init() {
	pool.jobs = make(chan *job, 256)
	pool.threads.Store(int64(envThreads()))
}

// startWorkers makes sure at least n-1 helper goroutines exist.
func startWorkers(n int) {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	for pool.started < n-1 {
		pool.started++
		go func() {
			for j := range pool.jobs {
				j.run()
			}
		}()
	}
}

// SetThreads sets how many goroutines Parallel uses (the caller included).
// n < 1 means runtime.NumCPU(). The default is GOTRAIN_THREADS if set, else
// runtime.NumCPU().
func SetThreads(n int) {
	if n < 1 {
		n = runtime.NumCPU()
	}
	pool.threads.Store(int64(n))
}

// Threads reports how many goroutines Parallel uses.
func Threads() int { return int(pool.threads.Load()) }

// Parallel splits [0,n) into contiguous chunks and runs fn on them
// concurrently on the persistent worker pool, returning when all are done.
// fn may itself call Parallel.
func Parallel(n int, fn func(lo, hi int)) {
	parallelChunks(n, Threads(), fn)
}

// parallelChunks runs fn over [0,n) cut into at most chunks pieces.
func parallelChunks(n, chunks int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	t := Threads()
	if chunks > n {
		chunks = n
	}
	if t <= 1 || chunks <= 1 {
		fn(0, n)
		return
	}
	startWorkers(t)
	j := &job{fn: fn, n: n, chunks: chunks}
	j.wg.Add(chunks)
	helpers := min(t, chunks) - 1
	for i := 0; i < helpers; i++ {
		select {
		case pool.jobs <- j:
		default: // queue full: the caller does the work itself
		}
	}
	j.run()
	j.wg.Wait()
}
