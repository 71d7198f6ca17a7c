package serve

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model"
)

// batcher runs rows with answer options: it takes the rows queued by every
// request (round-robin, so a large request does not starve small ones) up
// to a token budget, and scores them in one model.ContinuationBatch call,
// so that the rows of concurrent requests go through the layers together.
// Requests queue while a batch runs; after a batch, the batcher lingers
// briefly for its clients' next requests (see linger).
//
// Batches run on lanes, one goroutine each (as many as kernels.Threads()),
// each with its own KV cache. One lane alone uses every core; when several
// run batches at once they share the cores between them (kernels.Share), a
// lane that finds others idle taking only its share of the queued requests.
// One batch at a time left the cores idle whenever it waited: for the
// requests its clients send when it ends (the HTTP round trip, JSON,
// tokenizing, the linger), and inside it, at the end of every parallel
// kernel call for the slower half (on a machine shared with other work, for
// the half another process had the core for). With lanes the other lane
// computes meanwhile: 8 clients on 2 cores (small model, load average 2–3)
// kept 1.94–1.98 cores busy where one lane had 0.9–1.8, for the same rows
// per CPU-second (docs/benchmarks.md).
type batcher struct {
	m         *model.Model
	maxTokens int // prompt and continuation tokens per batch
	lanes     int
	met       *metrics
	// arriving counts requests read and encoded, not yet queued: their rows
	// are on the way
	arriving atomic.Int64
	busy     atomic.Int64 // lanes running a batch

	mu    sync.Mutex
	queue []*scoreWork
	// inflight holds, per lane, the prompts of the batch it is running
	inflight [][][]int
	wake     chan struct{}
	quit     chan struct{}
	done     chan struct{} // closed when every lane has stopped
	depth    atomic.Int64  // jobs queued, not yet taken
}

// scoreWork is one request's rows queued for the batcher.
type scoreWork struct {
	ctx  context.Context
	ent  *entry
	jobs []model.ContinuationJob
	out  [][]float64
	next int // jobs taken so far
	left int // jobs not yet scored
	err  error
	done chan struct{}
}

// newBatcher starts a batcher with lanes lanes (0: kernels.Threads()).
func newBatcher(m *model.Model, maxTokens, lanes int, met *metrics) *batcher {
	if lanes <= 0 {
		lanes = kernels.Threads()
	}
	b := &batcher{m: m, maxTokens: maxTokens, lanes: lanes, met: met, inflight: make([][][]int, lanes),
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for id := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.lane(id)
		}()
	}
	go func() {
		wg.Wait()
		close(b.done)
	}()
	return b
}

// score queues jobs for ent's adapter and waits for their scores, or for
// ctx. arrived (from arrive; may be nil) is called once they are queued.
func (b *batcher) score(ctx context.Context, ent *entry, jobs []model.ContinuationJob, arrived func()) ([][]float64, error) {
	if arrived != nil {
		defer arrived()
	}
	w := &scoreWork{ctx: ctx, ent: ent, jobs: jobs, out: make([][]float64, len(jobs)), left: len(jobs), done: make(chan struct{})}
	if len(jobs) == 0 {
		return w.out, nil
	}
	b.mu.Lock()
	select {
	case <-b.quit:
		b.mu.Unlock()
		return nil, errShuttingDown
	default:
	}
	b.queue = append(b.queue, w)
	b.depth.Add(int64(len(jobs)))
	b.mu.Unlock()
	if arrived != nil {
		arrived()
	}
	b.signal()
	select {
	case <-w.done:
		return w.out, w.err
	case <-ctx.Done():
		// the batcher drops the rest of the work when it next looks
		return nil, ctx.Err()
	}
}

// close stops the batcher after the work queued so far.
func (b *batcher) close() {
	b.mu.Lock()
	select {
	case <-b.quit:
	default:
		close(b.quit)
	}
	b.mu.Unlock()
	<-b.done
}

// signal wakes a lane, if one is waiting.
func (b *batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// lane runs batches until the batcher is closed and its queue is empty.
func (b *batcher) lane(id int) {
	c := b.m.NewCache()
	var last laneStats
	for {
		if n, _ := b.queued(); n == 0 {
			select {
			case <-b.wake:
				continue
			case <-b.quit:
				if n, _ := b.queued(); n == 0 {
					b.signal() // the other lanes see the quit too
					return
				}
				continue
			}
		}
		b.linger(last)
		batch, parts, deferred := b.take(id)
		if batch == nil {
			if deferred {
				// what is queued waits for another lane's batch: its end
				// signals (or, closing, the next take defers nothing)
				select {
				case <-b.wake:
				case <-b.quit:
				}
			}
			continue
		}
		began := time.Now()
		shared := kernels.Share()
		b.runBatch(c, batch, parts)
		shared()
		b.mu.Lock()
		b.inflight[id] = nil
		b.mu.Unlock()
		b.busy.Add(-1)
		b.signal()
		last = laneStats{parts: len(parts), took: time.Since(began), end: time.Now()}
	}
}

// minDefer is the prompt prefix, in tokens beyond what the prefix cache
// holds, that a queued row must share with a batch another lane is running
// to wait for it (see take).
const minDefer = 32

// computing reports whether another lane is computing a prefix of p that
// the prefix cache pc does not hold yet (minDefer tokens or more). b.mu is
// held.
func (b *batcher) computing(id int, p []int, pc *model.PrefixCache) bool {
	s := 0
	for l, prompts := range b.inflight {
		if l != id {
			for _, x := range prompts {
				s = max(s, model.CommonPrefix(p, x))
			}
		}
	}
	return s >= minDefer && s >= pc.Shared(p)+minDefer
}

// laneStats describe a lane's last batch: how many requests it served, how
// long it took and when it ended.
type laneStats struct {
	parts int
	took  time.Duration
	end   time.Time
}

// maxLinger bounds how long the batcher waits for a batch to fill.
const maxLinger = 20 * time.Millisecond

// linger waits, after a lane's batch that served several requests, until as
// many requests are queued again, none is still being read and encoded and
// the queue is not a full batch already — at most a quarter of the last
// batch's time (and maxLinger) after it ended. Without it, a batch of k clients'
// rows is followed by one holding only the requests that came in while it
// ran: measured with 8 clients sending 64 sample rows to the small model,
// 28–30 batches without, 18–21 with (the option rows 6.9 to a batch).
// One client never waits (its request is the one queued).
func (b *batcher) linger(last laneStats) {
	if last.parts <= 1 && b.arriving.Load() == 0 {
		return
	}
	deadline := last.end.Add(min(last.took/4, maxLinger))
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		n, tokens := b.queued()
		if tokens >= b.maxTokens || n >= last.parts && b.arriving.Load() == 0 || !time.Now().Before(deadline) {
			return
		}
		select {
		case <-b.wake:
		case <-t.C:
			return
		case <-b.quit:
			return
		}
	}
}

// queued returns the requests queued and the tokens of their jobs not yet
// taken.
func (b *batcher) queued() (requests, tokens int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, w := range b.queue {
		for k := w.next; k < len(w.jobs); k++ {
			tokens += w.size(k)
			if tokens >= b.maxTokens {
				return len(b.queue), tokens
			}
		}
	}
	return len(b.queue), tokens
}

// size is the tokens job k puts through the layers.
func (w *scoreWork) size(k int) int { return jobSize(w.jobs, k) }

// jobSize is the tokens jobs[k] puts through the layers: its prompt beyond
// what it shares with the job before it (a request's jobs are sorted, or
// share a prompt: a shared prefix is computed once, or taken from the prefix
// cache), then its continuations' tokens but the last (their trie, at
// most), then one row for its answers' first tokens.
func jobSize(jobs []model.ContinuationJob, k int) int {
	j := jobs[k]
	n := len(j.Prompt)
	if k > 0 {
		n -= model.CommonPrefix(jobs[k-1].Prompt, j.Prompt)
	}
	for _, c := range j.Conts {
		n += len(c) - 1
	}
	return n + 1
}

// arrive marks a request whose rows are on the way to the batcher; call
// the function it returns when they are queued (or will not be).
func (b *batcher) arrive() (arrived func()) {
	b.arriving.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			b.arriving.Add(-1)
			b.signal()
		})
	}
}

// part is a run of one request's jobs inside a batch.
type part struct {
	w      *scoreWork
	lo, hi int // jobs [lo,hi) of w
}

// take collects lane id's next batch: jobs of the first queued request's
// adapter, one job from each request in turn until the token budget is
// spent (a batch holds at least one job), from the requests' share of the
// idle lanes (⌈requests/idle⌉ of them; the rest, and what the budget leaves,
// wake another lane). A request whose prompt shares a prefix with a batch
// another lane is running, beyond what the prefix cache holds, waits for
// that batch to end and store it (deferred reports that only such requests
// are queued); unless the batcher is closing. The lane taking a non-empty
// batch counts as busy. Cancelled requests are dropped.
func (b *batcher) take(id int) (batch []model.ContinuationJob, parts []part, deferred bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	live := b.queue[:0]
	for _, w := range b.queue {
		if w.ctx.Err() != nil {
			b.depth.Add(-int64(len(w.jobs) - w.next))
			continue // its caller has returned already
		}
		live = append(live, w)
	}
	clear(b.queue[len(live):])
	b.queue = live
	if len(b.queue) == 0 {
		return nil, nil, false
	}
	// Rows sharing a prefix (a participant's persona and vignette) are
	// best computed together, or one after another through the prefix
	// cache, not on two lanes at once each computing the prefix: with rows
	// in participant order, 8 clients computed 16–21% more prompt tokens
	// than one client without the waiting and the share below, 12–16% with
	// the share alone.
	closing := false
	select {
	case <-b.quit:
		closing = true
	default:
	}
	wait := make([]bool, len(b.queue))
	first := -1
	for q, w := range b.queue {
		wait[q] = !closing && b.computing(id, w.jobs[w.next].Prompt, w.ent.prefix)
		if !wait[q] && first < 0 {
			first = q
		}
	}
	if first < 0 {
		return nil, nil, true
	}
	ent := b.queue[first].ent
	// the requests of this adapter, and this lane's share of them: the
	// oldest and those whose prompts share most with it
	var mine []int
	for q, w := range b.queue {
		if w.ent == ent && !wait[q] {
			mine = append(mine, q)
		}
	}
	if idle := b.lanes - int(b.busy.Load()); idle > 1 && len(mine) > 1 {
		w0 := b.queue[first]
		p0 := w0.jobs[w0.next].Prompt
		shared := func(q int) int { w := b.queue[q]; return model.CommonPrefix(p0, w.jobs[w.next].Prompt) }
		rest := mine[1:]
		slices.SortStableFunc(rest, func(a, b int) int { return shared(b) - shared(a) })
		mine = mine[:(len(mine)+idle-1)/idle]
		slices.Sort(mine)
	}
	// round-robin decides how many jobs each request gives; the batch then
	// holds each request's jobs as one run
	take := make([]int, len(b.queue))
	tokens, n := 0, 0
	for more := true; more; {
		more = false
		for _, q := range mine {
			w := b.queue[q]
			k := w.next + take[q]
			if k == len(w.jobs) {
				continue
			}
			size := w.size(k)
			if n > 0 && tokens+size > b.maxTokens {
				more = false
				break
			}
			tokens += size
			take[q]++
			n++
			more = true
		}
	}
	jobs := make([]model.ContinuationJob, 0, n)
	for q, w := range b.queue {
		if take[q] > 0 {
			parts = append(parts, part{w, w.next, w.next + take[q]})
			jobs = append(jobs, w.jobs[w.next:w.next+take[q]]...)
			w.next += take[q]
		}
	}
	// requests fully taken leave the queue; the batch still holds them
	rest := b.queue[:0]
	for _, w := range b.queue {
		if w.next < len(w.jobs) {
			rest = append(rest, w)
		}
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	b.depth.Add(-int64(len(jobs)))
	b.busy.Add(1)
	prompts := make([][]int, len(jobs))
	for i, j := range jobs {
		prompts[i] = j.Prompt
	}
	b.inflight[id] = prompts
	if len(b.queue) > 0 {
		b.signal()
	}
	return jobs, parts, false
}

// runBatch scores a batch and hands each request its rows; when the batch
// fails, each request's part is scored alone so that one bad request does
// not fail the others.
func (b *batcher) runBatch(c *model.KVCache, jobs []model.ContinuationJob, parts []part) {
	ent := parts[0].w.ent
	out, st, err := b.m.ContinuationBatch(c, ent.prefix, ent.ad, jobs)
	if err != nil && len(parts) > 1 {
		k := 0
		for _, p := range parts {
			n := p.hi - p.lo
			o, st1, err1 := b.m.ContinuationBatch(c, ent.prefix, ent.ad, jobs[k:k+n])
			b.finish(p, o, err1)
			b.met.batch(n, st1)
			k += n
		}
		return
	}
	b.met.batch(len(jobs), st)
	k := 0
	for _, p := range parts {
		n := p.hi - p.lo
		var o [][]float64
		if err == nil {
			o = out[k : k+n]
		}
		b.finish(p, o, err)
		k += n
	}
}

func (b *batcher) finish(p part, out [][]float64, err error) {
	w := p.w
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.left == 0 {
		return // failed already
	}
	if err != nil {
		w.err, w.left = err, 0
		if w.next < len(w.jobs) {
			b.depth.Add(-int64(len(w.jobs) - w.next))
			w.next = len(w.jobs)
		}
		close(w.done)
		return
	}
	copy(w.out[p.lo:p.hi], out)
	w.left -= p.hi - p.lo
	if w.left == 0 {
		close(w.done)
	}
}
