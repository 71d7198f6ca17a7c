package kernels

import (
	"sync/atomic"
	"testing"
)

func TestParallelCoversRangeOnce(t *testing.T) {
	defer SetThreads(Threads())
	for _, th := range []int{1, 2, 3, 8} {
		SetThreads(th)
		for _, n := range []int{0, 1, 2, 3, 7, 100, 1001} {
			// Parallel's fixed chunks, and guided pieces of several minimum sizes
			for _, run := range []func(int, func(lo, hi int)){
				Parallel,
				func(n int, fn func(lo, hi int)) { parallelGuided(n, 0, fn) },
				func(n int, fn func(lo, hi int)) { parallelGuided(n, 5, fn) },
				func(n int, fn func(lo, hi int)) { parallelGuided(n, n/(gemvChunks*th), fn) },
			} {
				hits := make([]atomic.Int32, n)
				run(n, func(lo, hi int) {
					if lo >= hi {
						t.Errorf("empty chunk [%d,%d)", lo, hi)
					}
					for i := lo; i < hi; i++ {
						hits[i].Add(1)
					}
				})
				for i := range hits {
					if h := hits[i].Load(); h != 1 {
						t.Fatalf("threads=%d n=%d: index %d run %d times", th, n, i, h)
					}
				}
			}
		}
	}
}

// TestParallelNested: Parallel (and parallelGuided) inside Parallel must not
// deadlock even when every worker is busy, because callers finish their own
// jobs.
func TestParallelNested(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(3)
	var total atomic.Int64
	Parallel(6, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			parallelGuided(50, 1, func(lo, hi int) {
				Parallel(hi-lo, func(a, b int) { total.Add(int64(b - a)) })
			})
		}
	})
	if got := total.Load(); got != 6*50 {
		t.Fatalf("nested Parallel did %d units, want 300", got)
	}
}

func TestSetThreads(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(5)
	if Threads() != 5 {
		t.Fatalf("Threads() = %d after SetThreads(5)", Threads())
	}
	SetThreads(0)
	if Threads() < 1 {
		t.Fatalf("SetThreads(0) gave %d", Threads())
	}
}

func TestSetLevel(t *testing.T) {
	defer SetLevel(Level())
	if err := SetLevel("avx1024"); err == nil {
		t.Fatal("SetLevel(avx1024) succeeded")
	}
	if err := SetLevel("generic"); err != nil || Level() != "generic" {
		t.Fatalf("SetLevel(generic): %v, Level %q", err, Level())
	}
	if ls := Levels(); ls[len(ls)-1] != "generic" {
		t.Fatalf("Levels() = %v, want generic last", ls)
	}
}

func BenchmarkParallelOverhead(b *testing.B) {
	var s atomic.Int64
	for b.Loop() {
		Parallel(2, func(lo, hi int) { s.Add(int64(hi - lo)) })
	}
}

// TestShare: while streams Share, a Parallel call gets Threads()/streams
// goroutines (one: the call runs as a single chunk on the caller), and the
// whole range still once; done twice counts once.
func TestShare(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(4)
	chunks := func() int {
		var n atomic.Int32
		Parallel(1000, func(lo, hi int) { n.Add(1) })
		return int(n.Load())
	}
	if got := chunks(); got != 4 {
		t.Fatalf("no sharing: %d chunks, want 4", got)
	}
	a := Share()
	if got := chunks(); got != 4 {
		t.Fatalf("one stream: %d chunks, want 4", got)
	}
	b := Share()
	if got := threadsNow(); got != 2 {
		t.Fatalf("two streams of 4 threads: %d each, want 2", got)
	}
	c := Share()
	d := Share()
	d()
	d()
	if got := threadsNow(); got != 1 {
		t.Fatalf("three streams of 4 threads: %d each, want 1", got)
	}
	if got := chunks(); got != 1 {
		t.Fatalf("three streams: %d chunks, want 1", got)
	}
	a()
	b()
	c()
	if got := threadsNow(); got != 4 {
		t.Fatalf("after the streams: %d threads, want 4", got)
	}
}
