package dist

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Options tune a Group's timeouts (zero values: the defaults).
type Options struct {
	// Join bounds the rendezvous: every rank must arrive within it (10 min).
	Join time.Duration
	// Silence is how long a peer may send nothing, not even a heartbeat,
	// before it counts as dead or hung (30 s); heartbeats go every Silence/6.
	Silence time.Duration
	// Progress is how long a collective waits for a peer that still sends
	// heartbeats but never arrives: a rank alive but stuck. 0 waits as long
	// as heartbeats come, since one legitimate micro-batch of a 14B model
	// on a few cores can take most of an hour.
	Progress time.Duration
}

func (o *Options) defaults() {
	if o.Join <= 0 {
		o.Join = 10 * time.Minute
	}
	if o.Silence <= 0 {
		o.Silence = 30 * time.Second
	}
}

// Group is the processes of a data-parallel job, each connected to every
// other by TCP. Its collectives run one at a time in the order they are
// issued, which must be the same on every rank. When any rank fails, exits
// or goes silent, every collective on every rank returns an error naming it.
type Group struct {
	rank, size int
	hosts      []string // each rank's host name, for messages
	opt        Options
	peers      []*peer // nil at this rank

	failOnce sync.Once
	failed   chan struct{} // closed by fail
	err      error         // set before failed is closed

	work    chan func()
	seq     uint32 // collectives issued (worker goroutine only)
	closing atomic.Bool
	bufs    sync.Pool // *[]byte pieces
}

type peer struct {
	rank int
	host string
	conn net.Conn
	r    *bufio.Reader
	wmu  sync.Mutex // one frame at a time
	// in holds frames read, for the collectives: the reader never waits on
	// them (a peer is at most a collective or two ahead), so heartbeats and
	// aborts are read at once; 4096 pieces is 4 GiB per peer.
	in  chan frame
	bye atomic.Bool
}

type frame struct {
	typ  byte
	seq  uint32
	data []byte
	buf  *[]byte // pool buffer holding data, or nil
}

const (
	frameBeat  = 1 // heartbeat, empty
	frameData  = 2 // float32 piece of a collective
	frameMsg   = 3 // bytes of an AllGather
	frameAbort = 4 // the sender failed: the message says why
	frameBye   = 5 // the sender is done and closes
)

// pieceFloats is the largest data frame: big enough that headers and
// syscalls cost nothing, small enough that adding one piece overlaps
// receiving the next.
const pieceFloats = 1 << 18

// maxMsg bounds an AllGather message and a handshake field from a peer.
const maxMsg = 1 << 30

// Rank is this process's rank.
func (g *Group) Rank() int { return g.rank }

// Size is the number of processes.
func (g *Group) Size() int { return g.size }

// Host is rank r's host name as it reported it.
func (g *Group) Host(r int) string { return g.hosts[r] }

// Failed is closed when the group has failed; Err then says why.
func (g *Group) Failed() <-chan struct{} { return g.failed }

// Err is the group's failure, or nil.
func (g *Group) Err() error {
	select {
	case <-g.failed:
		return g.err
	default:
		return nil
	}
}

// Abort fails the group with this rank's own error: every peer is told and
// fails naming this rank.
func (g *Group) Abort(err error) { g.fail(err, true) }

// Closed reports whether Close was called.
func (g *Group) Closed() bool { return g.closing.Load() }

// Close says goodbye to every peer and closes the connections; peers that
// see it after their last collective carry on normally.
func (g *Group) Close() error {
	if g == nil || !g.closing.CompareAndSwap(false, true) {
		return nil
	}
	for _, p := range g.peers {
		if p != nil {
			p.send(frameBye, 0, nil, 5*time.Second)
		}
	}
	g.fail(errors.New("dist: group closed"), false)
	return nil
}

// fail records the group's first error, tells the peers (when own, the
// error is this rank's) and closes every connection.
func (g *Group) fail(err error, own bool) {
	g.failOnce.Do(func() {
		g.err = err
		close(g.failed)
		var wg sync.WaitGroup
		for _, p := range g.peers {
			if p == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !g.closing.Load() {
					p.send(frameAbort, 0, []byte(err.Error()), 2*time.Second)
				}
				p.conn.Close()
			}()
		}
		wg.Wait()
	})
}

// send writes one frame within timeout.
func (p *peer) send(typ byte, seq uint32, data []byte, timeout time.Duration) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	var hdr [9]byte
	hdr[0] = typ
	binary.LittleEndian.PutUint32(hdr[1:], seq)
	binary.LittleEndian.PutUint32(hdr[5:], uint32(len(data)))
	p.conn.SetWriteDeadline(time.Now().Add(timeout))
	bufs := net.Buffers{hdr[:], data}
	_, err := bufs.WriteTo(p.conn)
	return err
}

// who names rank r for messages.
func (g *Group) who(r int) string { return fmt.Sprintf("rank %d (%s)", r, g.hosts[r]) }

// readLoop reads p's frames until the connection ends, handling heartbeats
// and aborts itself and queueing the rest for the collectives; it never
// waits on them, so a dead or silent peer is noticed at once.
func (g *Group) readLoop(p *peer) {
	var hdr [9]byte
	for {
		err := g.readFull(p, hdr[:])
		if err == nil {
			typ, seq, n := hdr[0], binary.LittleEndian.Uint32(hdr[1:]), binary.LittleEndian.Uint32(hdr[5:])
			if n > maxMsg || typ == frameData && (n%4 != 0 || n > 4*pieceFloats) {
				err = fmt.Errorf("a frame of %d bytes", n)
			} else {
				f := frame{typ: typ, seq: seq}
				if typ == frameData {
					f.buf = g.piece()
					f.data = (*f.buf)[:n]
				} else {
					f.data = make([]byte, n)
				}
				if err = g.readFull(p, f.data); err == nil {
					switch typ {
					case frameBeat:
					case frameBye:
						p.bye.Store(true)
						return
					case frameAbort:
						g.fail(fmt.Errorf("%s failed: %s", g.who(p.rank), f.data), false)
						return
					case frameData, frameMsg:
						p.in <- f
					default:
						err = fmt.Errorf("a frame of unknown type %d", typ)
					}
				}
			}
		}
		if err == nil {
			continue
		}
		if g.Err() != nil || p.bye.Load() {
			return // already failed or closing: this end is expected
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			err = fmt.Errorf("%s sent nothing for %s: it hangs or its machine is down", g.who(p.rank), g.opt.Silence)
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err):
			err = fmt.Errorf("%s closed its connection: it exited or was killed", g.who(p.rank))
		default:
			err = fmt.Errorf("%s: %v", g.who(p.rank), err)
		}
		g.fail(fmt.Errorf("dist: %w", err), false)
		return
	}
}

// readFull reads len(b) bytes from p, failing when p has sent nothing for
// Silence. A timeout is tried once more with a short deadline: a process
// starved of CPU for longer than Silence (seen at load 30 on 2 cores) wakes
// with its deadline expired and the peer's heartbeats waiting unread, which
// is not the peer's silence.
func (g *Group) readFull(p *peer, b []byte) error {
	for got := 0; got < len(b); {
		p.conn.SetReadDeadline(time.Now().Add(g.opt.Silence))
		n, err := p.r.Read(b[got:])
		got += n
		var ne net.Error
		if n == 0 && errors.As(err, &ne) && ne.Timeout() {
			p.conn.SetReadDeadline(time.Now().Add(time.Second))
			n, err = p.r.Read(b[got:])
			got += n
		}
		if err != nil && n == 0 {
			return err
		}
	}
	return nil
}

func isReset(err error) bool {
	var se *os.SyscallError
	return errors.As(err, &se)
}

// heartbeat sends an empty frame every Silence/6 while nothing else is
// being sent, so the peers know this process is alive even while it computes.
func (g *Group) heartbeat() {
	t := time.NewTicker(g.opt.Silence / 6)
	defer t.Stop()
	for {
		select {
		case <-g.failed:
			return
		case <-t.C:
		}
		for _, p := range g.peers {
			if p != nil && p.wmu.TryLock() {
				p.wmu.Unlock()
				if p.send(frameBeat, 0, nil, g.opt.Silence) != nil {
					// the read side reports what happened
				}
			}
		}
	}
}

func (g *Group) piece() *[]byte {
	if b, ok := g.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 4*pieceFloats)
	return &b
}

// recv returns the next frame from rank r, which must be of type typ and
// belong to collective seq.
func (g *Group) recv(r int, typ byte, seq uint32) (frame, error) {
	p := g.peers[r]
	var expired <-chan time.Time
	if g.opt.Progress > 0 {
		timer := time.NewTimer(g.opt.Progress)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case f := <-p.in:
		if f.typ != typ || f.seq != seq {
			err := fmt.Errorf("dist: %s is at collective %d, this rank at %d: the ranks run different programs or settings", g.who(r), f.seq, seq)
			g.Abort(err)
			return frame{}, err
		}
		return f, nil
	case <-g.failed:
		return frame{}, g.err
	case <-expired:
		err := fmt.Errorf("dist: %s is alive but made no progress for %s: it hangs", g.who(r), g.opt.Progress)
		g.Abort(err)
		return frame{}, err
	}
}

func (g *Group) release(f frame) {
	if f.buf != nil {
		g.bufs.Put(f.buf)
	}
}

// bytesOf views float32s as their little-endian bytes (the machines this
// runs on are little-endian; Join refuses others).
func bytesOf(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

func floatsOf(b []byte) []float32 {
	if len(b) < 4 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// Join meets the other ranks of launch l at l.Addr: rank 0 listens there, the
// others connect to it, each proving with an HMAC of key (what identifies
// the job: its command line, say) that it belongs to this job; strangers
// are refused and logged. Then every pair of ranks connects directly.
func Join(l Launch, key []byte, opt Options, logf func(string, ...any)) (*Group, error) {
	opt.defaults()
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if !littleEndian() {
		return nil, fmt.Errorf("dist: big-endian machines are not supported")
	}
	if l.Size < 1 || l.Rank < 0 || l.Rank >= l.Size {
		return nil, fmt.Errorf("dist: rank %d of %d", l.Rank, l.Size)
	}
	g := &Group{rank: l.Rank, size: l.Size, opt: opt, failed: make(chan struct{}), work: make(chan func(), 64),
		peers: make([]*peer, l.Size), hosts: make([]string, l.Size)}
	host, _ := os.Hostname()
	g.hosts[l.Rank] = host
	mac := hmac.New(sha256.New, append([]byte("gotrain dist 1|"+strconv.Itoa(l.Size)+"|"+l.JobID+"|"), key...))
	deadline := time.Now().Add(opt.Join)
	if l.Size > 1 {
		var err error
		if l.Rank == 0 {
			err = g.host0(l, mac, deadline, logf)
		} else {
			err = g.guest(l, mac, deadline, logf)
		}
		if err != nil {
			for _, p := range g.peers {
				if p != nil {
					p.conn.Close()
				}
			}
			return nil, err
		}
	}
	for _, p := range g.peers {
		if p != nil {
			p.conn.SetDeadline(time.Time{})
			go g.readLoop(p)
		}
	}
	if l.Size == 1 {
		return g, nil // collectives run inline; nothing to watch
	}
	go g.heartbeat()
	// The collectives' worker: after a failure it still runs what is queued,
	// each returning the failure at once, so no Wait hangs.
	go func() {
		for f := range g.work {
			f()
		}
	}()
	return g, nil
}

// LoopbackJob joins n ranks inside this process on 127.0.0.1 (tests, and
// trying the collectives out): rank r of the job is element r.
func LoopbackJob(n int, key []byte, opt Options) ([]*Group, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	gs := make([]*Group, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gs[r], errs[r] = Join(Launch{Rank: r, Size: n, Addr: addr, JobID: "loopback"}, key, opt, nil)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, g := range gs {
			g.Close()
		}
		return nil, err
	}
	return gs, nil
}

// Local is the group of a single process: its collectives copy and add
// in place, the same arithmetic as a job of one.
func Local() *Group {
	g, _ := Join(Launch{Size: 1}, nil, Options{}, nil)
	return g
}

// listenAddr is where a rank listens: on loopback when the job meets on
// loopback, else on every interface (a node's name may resolve to a
// loopback alias on itself, 127.0.1.1 on Debian, which peers cannot reach).
func listenAddr(rendezvous string, port string) string {
	h, _, _ := net.SplitHostPort(rendezvous)
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() || h == "localhost" {
		return net.JoinHostPort(h, port)
	}
	return ":" + port
}

// hello is what a connecting rank sends: who it is, where it listens for
// the ranks after it, and the proof it belongs to the job.
type hello struct {
	rank, size int
	port       int
	host       string
}

const magic = "gotrain-dist/1\n"

// handshake runs on the accepting side: send a nonce, read the hello and
// check its MAC. It returns the hello, or an error for a stranger.
func handshake(c net.Conn, mac func([]byte) []byte, size int) (hello, *bufio.Reader, error) {
	var nonce [32]byte
	rand.Read(nonce[:])
	if _, err := c.Write(append([]byte(magic), nonce[:]...)); err != nil {
		return hello{}, nil, err
	}
	r := bufio.NewReaderSize(c, 64<<10)
	var fixed [10]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return hello{}, nil, err
	}
	h := hello{rank: int(binary.LittleEndian.Uint32(fixed[0:])), size: int(binary.LittleEndian.Uint32(fixed[4:])),
		port: int(binary.LittleEndian.Uint16(fixed[8:]))}
	n, err := r.ReadByte()
	if err != nil {
		return hello{}, nil, err
	}
	name := make([]byte, n)
	sum := make([]byte, sha256.Size)
	if _, err := io.ReadFull(r, name); err != nil {
		return hello{}, nil, err
	}
	if _, err := io.ReadFull(r, sum); err != nil {
		return hello{}, nil, err
	}
	h.host = string(name)
	want := mac(append(append(nonce[:], fixed[:]...), name...))
	if !hmac.Equal(sum, want) {
		c.Write([]byte{1})
		return hello{}, nil, fmt.Errorf("its job key differs (another job, or other arguments)")
	}
	if h.size != size || h.rank <= 0 || h.rank >= size {
		c.Write([]byte{1})
		return hello{}, nil, fmt.Errorf("it claims rank %d of %d in a job of %d", h.rank, h.size, size)
	}
	return h, r, nil
}

// introduce runs on the connecting side: read the nonce, send the hello and
// its MAC, and read whether it was accepted.
func introduce(c net.Conn, mac func([]byte) []byte, h hello) (*bufio.Reader, error) {
	r := bufio.NewReaderSize(c, 64<<10)
	var greet [len(magic) + 32]byte
	if _, err := io.ReadFull(r, greet[:]); err != nil {
		return nil, fmt.Errorf("no greeting: %w", err)
	}
	if string(greet[:len(magic)]) != magic {
		return nil, fmt.Errorf("it is not a gotrain rendezvous")
	}
	var fixed [10]byte
	binary.LittleEndian.PutUint32(fixed[0:], uint32(h.rank))
	binary.LittleEndian.PutUint32(fixed[4:], uint32(h.size))
	binary.LittleEndian.PutUint16(fixed[8:], uint16(h.port))
	name := []byte(h.host)
	if len(name) > 255 {
		name = name[:255]
	}
	msg := append(append([]byte{}, fixed[:]...), byte(len(name)))
	msg = append(append(msg, name...), mac(append(append(greet[len(magic):], fixed[:]...), name...))...)
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	ok, err := r.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("no answer: %w", err)
	}
	if ok != 0 {
		return nil, fmt.Errorf("it refused this rank: another job's rendezvous, other arguments, or a duplicate rank")
	}
	return r, nil
}

func macFunc(m hash.Hash) func([]byte) []byte {
	var mu sync.Mutex
	return func(b []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		m.Reset()
		m.Write(b)
		return m.Sum(nil)
	}
}

func (g *Group) addPeer(rank int, host string, c net.Conn, r *bufio.Reader) {
	g.hosts[rank] = host
	g.peers[rank] = &peer{rank: rank, host: host, conn: c, r: r, in: make(chan frame, 1<<12)}
}

// host0 is rank 0's rendezvous: accept every other rank, then send each
// the table of where the others listen.
func (g *Group) host0(l Launch, m hash.Hash, deadline time.Time, logf func(string, ...any)) error {
	mac := macFunc(m)
	_, port, _ := net.SplitHostPort(l.Addr)
	ln, err := net.Listen("tcp", listenAddr(l.Addr, port))
	if err != nil {
		return fmt.Errorf("dist: rank 0 cannot listen for the rendezvous at %s: %w (another job on this machine? set MASTER_PORT)", l.Addr, err)
	}
	defer ln.Close()
	ln.(*net.TCPListener).SetDeadline(deadline)
	addrs := make([]string, l.Size)
	for joined := 1; joined < l.Size; {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("dist: rendezvous at %s: %d of %d ranks joined within %s (missing: %s)", l.Addr, joined, l.Size, g.opt.Join, g.missing())
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		h, r, err := handshake(c, mac, l.Size)
		if err == nil && g.peers[h.rank] != nil {
			c.Write([]byte{1})
			err = fmt.Errorf("rank %d joined twice", h.rank)
		}
		if err != nil {
			logf("dist: refused a connection from %s: %v", c.RemoteAddr(), err)
			c.Close()
			continue
		}
		c.Write([]byte{0})
		ip, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		addrs[h.rank] = net.JoinHostPort(ip, strconv.Itoa(h.port))
		g.addPeer(h.rank, h.host, c, r)
		joined++
	}
	// table: for every rank its host and address
	var tab []byte
	for r := 0; r < l.Size; r++ {
		tab = appendString(appendString(tab, g.hosts[r]), addrs[r])
	}
	for _, p := range g.peers[1:] {
		p.conn.SetWriteDeadline(deadline)
		if _, err := p.conn.Write(appendString(nil, string(tab))); err != nil {
			return fmt.Errorf("dist: rendezvous: sending the table to %s: %w", g.who(p.rank), err)
		}
	}
	logf("dist: rank 0 of %d: all ranks joined at %s", l.Size, l.Addr)
	return nil
}

func (g *Group) missing() string {
	s := ""
	for r := 1; r < g.size; r++ {
		if g.peers[r] == nil {
			if s != "" {
				s += ","
			}
			s += strconv.Itoa(r)
		}
	}
	return s
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func readString(r *bufio.Reader) (string, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	l := binary.LittleEndian.Uint32(n[:])
	if l > maxMsg {
		return "", fmt.Errorf("a string of %d bytes", l)
	}
	b := make([]byte, l)
	_, err := io.ReadFull(r, b)
	return string(b), err
}

// guest is the rendezvous of ranks > 0: listen for the ranks after this
// one, join rank 0, learn the table, connect to the ranks before this one
// and accept the ranks after it.
func (g *Group) guest(l Launch, m hash.Hash, deadline time.Time, logf func(string, ...any)) error {
	mac := macFunc(m)
	ln, err := net.Listen("tcp", listenAddr(l.Addr, "0"))
	if err != nil {
		return fmt.Errorf("dist: rank %d cannot listen: %w", l.Rank, err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	me := hello{rank: l.Rank, size: l.Size, port: port, host: g.hosts[l.Rank]}
	// join rank 0, retrying while it is not up yet
	var c net.Conn
	var r *bufio.Reader
	for {
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err = d.Dial("tcp", l.Addr)
		if err == nil {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if r, err = introduce(c, mac, me); err != nil {
				c.Close()
				return fmt.Errorf("dist: rendezvous at %s: %w", l.Addr, err)
			}
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dist: rank %d: rank 0's rendezvous at %s did not answer within %s: %w", l.Rank, l.Addr, g.opt.Join, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	c.SetDeadline(deadline)
	tab, err := readString(r)
	if err != nil {
		c.Close()
		return fmt.Errorf("dist: rendezvous at %s: no table of ranks: %w", l.Addr, err)
	}
	tr := bufio.NewReader(strings.NewReader(tab))
	addrs := make([]string, l.Size)
	for i := 0; i < l.Size; i++ {
		if g.hosts[i], err = readString(tr); err == nil {
			addrs[i], err = readString(tr)
		}
		if err != nil {
			c.Close()
			return fmt.Errorf("dist: rendezvous at %s: a bad table of ranks", l.Addr)
		}
	}
	g.hosts[l.Rank] = me.host
	g.addPeer(0, g.hosts[0], c, r)
	for q := 1; q < l.Rank; q++ {
		d := net.Dialer{Deadline: deadline}
		c, err := d.Dial("tcp", addrs[q])
		if err != nil {
			return fmt.Errorf("dist: rank %d cannot reach %s at %s: %w", l.Rank, g.who(q), addrs[q], err)
		}
		c.SetDeadline(deadline)
		r, err := introduce(c, mac, me)
		if err != nil {
			c.Close()
			return fmt.Errorf("dist: rank %d: %s at %s: %w", l.Rank, g.who(q), addrs[q], err)
		}
		g.addPeer(q, g.hosts[q], c, r)
	}
	ln.(*net.TCPListener).SetDeadline(deadline)
	for accepted := l.Rank + 1; accepted < l.Size; {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("dist: rank %d: ranks after it did not connect within %s", l.Rank, g.opt.Join)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		h, r, err := handshake(c, mac, l.Size)
		if err == nil && (h.rank <= l.Rank || g.peers[h.rank] != nil) {
			c.Write([]byte{1})
			err = fmt.Errorf("unexpected rank %d", h.rank)
		}
		if err != nil {
			logf("dist: rank %d refused a connection from %s: %v", l.Rank, c.RemoteAddr(), err)
			c.Close()
			continue
		}
		c.Write([]byte{0})
		g.addPeer(h.rank, g.hosts[h.rank], c, r)
		accepted++
	}
	return nil
}
