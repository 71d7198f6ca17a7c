package dist

import (
	"fmt"
	"sync"

	"github.com/gotrain/gotrain/kernels"
)

// The all-reduce is a reduce-scatter followed by an all-gather, each rank
// sending and receiving (W−1)/W of the buffer in each half: the bytes of a
// ring all-reduce, the bandwidth optimum. Unlike a ring, whose partial sums
// start at a different rank for every chunk, every element's contributions
// meet at the rank that owns its chunk and are added there in rank order
// (x₀ + x₁) + x₂ + …, the order one process adds its micro-batches in; that
// is what makes a data-parallel run bit-for-bit equal to a single process.
// Pieces of at most pieceFloats go out concurrently to every owner, and
// the owner adds a piece as soon as the ranks before have sent theirs.

// Pending is a collective issued asynchronously.
type Pending struct {
	done chan struct{}
	err  error
}

// Wait returns when the collective is done, with its error.
func (p *Pending) Wait() error {
	<-p.done
	return p.err
}

// issue queues op as the group's next collective.
func (g *Group) issue(op func(seq uint32) error) *Pending {
	p := &Pending{done: make(chan struct{})}
	run := func() {
		g.seq++
		if p.err = g.Err(); p.err == nil {
			p.err = op(g.seq)
		}
		close(p.done)
	}
	if g.size == 1 {
		run()
	} else {
		g.work <- run
	}
	return p
}

// chunk is the part [lo, hi) of n elements that rank c owns.
func (g *Group) chunk(n, c int) (lo, hi int) {
	return int(int64(c) * int64(n) / int64(g.size)), int(int64(c+1) * int64(n) / int64(g.size))
}

// sendFloats sends v to p in pieces.
func (g *Group) sendFloats(p *peer, seq uint32, v []float32) error {
	for off := 0; off < len(v); off += pieceFloats {
		if err := g.sendFrame(p, frameData, seq, bytesOf(v[off:min(off+pieceFloats, len(v))])); err != nil {
			return err
		}
	}
	return nil
}

// sendFrame sends one frame of a collective; a failure fails the group
// (unless it had already failed, which is then the error).
func (g *Group) sendFrame(p *peer, typ byte, seq uint32, data []byte) error {
	err := p.send(typ, seq, data, g.opt.Silence)
	if err == nil {
		return nil
	}
	if e := g.Err(); e != nil {
		return e
	}
	err = fmt.Errorf("dist: sending to %s: %w", g.who(p.rank), err)
	g.fail(err, true)
	return err
}

// sendAll runs send for every peer concurrently; wait returns the first error.
func (g *Group) sendAll(send func(p *peer) error) (wait func() error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, p := range g.peers {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := send(p); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	return func() error {
		wg.Wait()
		return first
	}
}

// ReduceAsync adds to acc, on the elements this rank owns, the parts of the
// ranks 0 … present−1 in rank order: acc += part₀ + part₁ + … (each add
// rounded, left to right). Ranks from present on contribute nothing (their
// part may be nil) but still take their share. part must not change until
// Wait returns; acc outside this rank's share is left as it was (AllGather
// fills it in). Every rank must issue the same collectives in one order.
func (g *Group) ReduceAsync(acc, part []float32, present int) *Pending {
	return g.issue(func(seq uint32) error { return g.reduce(seq, acc, part, present, false) })
}

// reduce is ReduceAsync; with assign, acc's share is overwritten with the
// sum instead (acc and part may then be the same buffer).
func (g *Group) reduce(seq uint32, acc, part []float32, present int, assign bool) error {
	n := len(acc)
	if present > g.size {
		present = g.size
	}
	wait := func() error { return nil }
	if g.rank < present {
		if len(part) != n {
			err := fmt.Errorf("dist: reduce of %d values with a part of %d", n, len(part))
			g.Abort(err)
			return err
		}
		wait = g.sendAll(func(p *peer) error {
			lo, hi := g.chunk(n, p.rank)
			return g.sendFloats(p, seq, part[lo:hi])
		})
	}
	lo, hi := g.chunk(n, g.rank)
	var own []float32
	for off := lo; off < hi; off += pieceFloats {
		end := min(off+pieceFloats, hi)
		dst := acc[off:end]
		if assign && g.rank < present {
			own = append(own[:0], part[off:end]...)
		}
		for src := 0; src < present; src++ {
			x := own
			var f frame
			if src != g.rank {
				var err error
				if f, err = g.recv(src, frameData, seq); err != nil {
					wait()
					return err
				}
				if x = floatsOf(f.data); len(x) != end-off {
					err := fmt.Errorf("dist: %s sent %d values for a piece of %d", g.who(src), len(x), end-off)
					g.Abort(err)
					wait()
					return err
				}
			} else if !assign {
				x = part[off:end]
			}
			if assign && src == 0 {
				copy(dst, x)
			} else {
				kernels.Add(dst, x)
			}
			g.release(f)
		}
	}
	return wait()
}

// AllGatherAsync sends this rank's share of v to every rank and fills the
// other ranks' shares in from theirs, so that after a ReduceAsync every
// rank holds the whole sum.
func (g *Group) AllGatherAsync(v []float32) *Pending {
	return g.issue(func(seq uint32) error { return g.allGather(seq, v) })
}

func (g *Group) allGather(seq uint32, v []float32) error {
	n := len(v)
	lo, hi := g.chunk(n, g.rank)
	wait := g.sendAll(func(p *peer) error { return g.sendFloats(p, seq, v[lo:hi]) })
	recvd := g.sendAll(func(p *peer) error {
		qlo, qhi := g.chunk(n, p.rank)
		for off := qlo; off < qhi; off += pieceFloats {
			end := min(off+pieceFloats, qhi)
			f, err := g.recv(p.rank, frameData, seq)
			if err != nil {
				return err
			}
			if copy(v[off:end], floatsOf(f.data)) != end-off || len(f.data) != 4*(end-off) {
				err := fmt.Errorf("dist: %s sent %d bytes for a piece of %d values", g.who(p.rank), len(f.data), end-off)
				g.Abort(err)
				return err
			}
			g.release(f)
		}
		return nil
	})
	err := recvd()
	if werr := wait(); err == nil {
		err = werr
	}
	return err
}

// AllReduce replaces v on every rank with the sum of every rank's v, added
// in rank order.
func (g *Group) AllReduce(v []float32) error {
	if err := g.issue(func(seq uint32) error { return g.reduce(seq, v, v, g.size, true) }).Wait(); err != nil {
		return err
	}
	return g.AllGatherAsync(v).Wait()
}

// AllGather sends b to every rank and returns every rank's bytes, by rank.
func (g *Group) AllGather(b []byte) ([][]byte, error) {
	out := make([][]byte, g.size)
	err := g.issue(func(seq uint32) error {
		out[g.rank] = b
		wait := g.sendAll(func(p *peer) error { return g.sendFrame(p, frameMsg, seq, b) })
		recvd := g.sendAll(func(p *peer) error {
			f, err := g.recv(p.rank, frameMsg, seq)
			out[p.rank] = f.data
			return err
		})
		err := recvd()
		if werr := wait(); err == nil {
			err = werr
		}
		return err
	}).Wait()
	if err != nil {
		return nil, err
	}
	return out, nil
}
