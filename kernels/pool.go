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
// last chunks (see helperSpin). parallelGuided cuts pieces of decreasing
// size instead of fixed chunks.

// job is one Parallel call in flight.
type job struct {
	fn     func(lo, hi int)
	n      int
	chunks int          // fixed chunks, or 0: guided (see parallelGuided)
	minRun int          // guided: the smallest piece
	share  int          // guided: pieces are 1/share of what is left
	next   atomic.Int64 // next chunk (guided: next index) to claim
	left   atomic.Int64 // chunks (guided: indices) not yet done
	wg     sync.WaitGroup
}

// run claims and runs pieces until none are left.
func (j *job) run() {
	for {
		lo, hi, units := 0, 0, 1
		if j.chunks > 0 {
			c := int(j.next.Add(1) - 1)
			if c >= j.chunks {
				return
			}
			lo, hi = j.n*c/j.chunks, j.n*(c+1)/j.chunks
		} else {
			cur := j.next.Load()
			if cur >= int64(j.n) {
				return
			}
			lo = int(cur)
			hi = min(j.n, lo+max(j.minRun, (j.n-lo)/j.share))
			if !j.next.CompareAndSwap(cur, int64(hi)) {
				continue
			}
			units = hi - lo
		}
		j.fn(lo, hi)
		j.left.Add(int64(-units))
		j.wg.Add(-units)
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
	if chunks > n {
		chunks = n
	}
	if n <= 0 {
		return
	}
	if chunks <= 1 {
		fn(0, n)
		return
	}
	start(&job{fn: fn, n: n, chunks: chunks})
}

// parallelGuided runs fn over [0,n) in pieces of decreasing size (guided
// self-scheduling): each claim takes 1/(2t) of what is left, at least
// minRun. Long first pieces keep each thread's memory stream going (the
// decoding GEMVs read their weights once, and 16 fixed chunks a thread cost
// 12-25% of a 30B-A3B token's GEMV bandwidth against 4: each new stream
// starts the hardware prefetcher over), short last ones keep a slow thread
// from holding up the rest (why fixed chunks were 16 a thread).
func parallelGuided(n, minRun int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if n <= minRun {
		fn(0, n)
		return
	}
	start(&job{fn: fn, n: n, minRun: max(1, minRun), share: 2 * threadsNow()})
}

// start runs j on the caller and the pool's helpers and returns when every
// index is done.
func start(j *job) {
	t := threadsNow()
	if t <= 1 {
		j.fn(0, j.n)
		return
	}
	startWorkers(t)
	units := j.chunks
	if units == 0 {
		units = j.n
	}
	j.left.Store(int64(units))
	j.wg.Add(units)
	helpers := t - 1
	if j.chunks > 0 {
		helpers = min(t, j.chunks) - 1
	}
	for i := 0; i < helpers; i++ {
		select {
		case pool.jobs <- j:
		default: // queue full: the caller does the work itself
		}
	}
	j.run()
	j.wait()
}
