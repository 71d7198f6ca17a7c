package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The worker pool: goroutines started once and fed jobs over a channel. A
// job is a range [0,n) cut into chunks; workers and the calling goroutine
// claim chunks with an atomic counter, so the caller can always finish a job
// alone. That makes nested Parallel calls safe (no deadlock when every
// worker is busy) and keeps the per-call cost at one channel send per helper.
// Helpers poll for a moment before blocking, and so does the caller for the
// last chunks (see helperSpin).

// job is one Parallel call in flight.
type job struct {
	fn     func(lo, hi int)
	n      int
	chunks int
	next   atomic.Int64 // next chunk to claim
	left   atomic.Int64 // chunks not yet done
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
		j.left.Add(-1)
		j.wg.Done()
	}
}

// Blocking hand-offs cost about 100 µs each on the development VM (a futex
// wake and an inter-processor interrupt): longer than a one-token GEMV. So
// helpers poll for the next job, and the caller for the last chunks, for a
// while before they block.
const (
	helperSpin = 200 * time.Microsecond
	callerSpin = 500 * time.Microsecond
)

// spinning reports whether waits may poll: not when there are more threads
// than Ps, where a poller would hold a P a blocked chunk needs.
func spinning() bool { return Threads() <= runtime.GOMAXPROCS(0) }

// wait returns when every chunk is done.
func (j *job) wait() {
	// spinning once, not per poll: GOMAXPROCS(0) takes the scheduler's lock.
	deadline := time.Now().Add(callerSpin)
	for i, spin := 1, spinning(); spin && j.left.Load() > 0; i++ {
		if i%64 == 0 && time.Now().After(deadline) {
			break
		}
	}
	j.wg.Wait()
}

// pollJob returns the next job if one is queued within helperSpin, else nil.
func pollJob() *job {
	if !spinning() {
		return nil
	}
	deadline := time.Now().Add(helperSpin)
	for i := 1; ; i++ {
		if len(pool.jobs) > 0 { // a racy peek; the receive decides
			select {
			case j := <-pool.jobs:
				return j
			default:
			}
		}
		if i%256 == 0 && time.Now().After(deadline) {
			return nil
		}
	}
}

// pool is the process-wide set of workers.
var pool struct {
	mu      sync.Mutex
	threads atomic.Int64 // goroutines a Parallel call uses, including the caller
	sharers atomic.Int64 // callers between Share and its done (see Share)
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
			for {
				j := pollJob()
				if j == nil {
					j = <-pool.jobs
				}
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
	pool.threads.Store(int64(min(n, MaxThreads)))
}

// Threads reports how many goroutines Parallel uses.
func Threads() int { return int(pool.threads.Load()) }

// Share marks the calling goroutine as one of several independent streams
// of kernel calls running at once (a server's concurrent batches): while n
// goroutines are between Share and the done it returns, each Parallel call
// uses Threads()/n goroutines (at least one) rather than all of them, so the
// streams run side by side, each on its own cores, instead of every call
// splitting across all cores and waiting at its end for the slowest part,
// one of which another stream's thread may be holding up.
func Share() (done func()) {
	pool.sharers.Add(1)
	var once sync.Once
	return func() { once.Do(func() { pool.sharers.Add(-1) }) }
}

// threadsNow is how many goroutines a Parallel call uses now: Threads(),
// divided among the streams that Share.
func threadsNow() int {
	t := Threads()
	if s := int(pool.sharers.Load()); s > 1 {
		t = max(1, t/s)
	}
	return t
}

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
	t := threadsNow()
	if chunks > n {
		chunks = n
	}
	if t <= 1 || chunks <= 1 {
		fn(0, n)
		return
	}
	startWorkers(t)
	j := &job{fn: fn, n: n, chunks: chunks}
	j.left.Store(int64(chunks))
	j.wg.Add(chunks)
	helpers := min(t, chunks) - 1
	for i := 0; i < helpers; i++ {
		select {
		case pool.jobs <- j:
		default: // queue full: the caller does the work itself
		}
	}
	j.run()
	j.wait()
}
