package dist

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestExpandHostlist(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"node01", "node01"},
		{"node[01-04,07]", "node01,node02,node03,node04,node07"},
		{"a,b[8-10],c", "a,b8,b9,b10,c"},
		{"r[1-2]n[09-10]", "r1n09,r1n10,r2n09,r2n10"},
		{"gpu-[3]", "gpu-3"},
		{"n[001-002].cluster", "n001.cluster,n002.cluster"},
	} {
		got, err := ExpandHostlist(c.in, 0)
		if err != nil || strings.Join(got, ",") != c.want {
			t.Errorf("%q: got %v, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", ",", "n[", "n]", "n[1-", "n[3-1]", "n[a]", "n[1-2", "n[[1]]", "n[0-99999999]", "n[1,]"} {
		if got, err := ExpandHostlist(bad, 0); err == nil {
			t.Errorf("%q: got %v, want an error", bad, got)
		}
	}
	if _, err := ExpandHostlist("n[1-100]", 10); err == nil {
		t.Error("limit not enforced")
	}
}

func FuzzExpandHostlist(f *testing.F) {
	for _, s := range []string{"node[01-04,07]", "a,b[8-10],c", "r[1-2]n[09-10]", "x[0-65535]", "[]", "a[1-3]b[1-3]c[1-3]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hs, err := ExpandHostlist(s, 1000)
		if err != nil {
			return
		}
		if len(hs) == 0 || len(hs) > 1000 {
			t.Fatalf("%q: %d hosts", s, len(hs))
		}
		first, err := FirstHost(s)
		if err != nil || first != hs[0] {
			t.Fatalf("%q: FirstHost %q, %v; expansion starts %q", s, first, err, hs[0])
		}
		for _, h := range hs {
			if strings.ContainsAny(h, "[],") {
				t.Fatalf("%q: host %q", s, h)
			}
		}
	})
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestFromEnv(t *testing.T) {
	l, ok, err := FromEnv(env("RANK", "2", "WORLD_SIZE", "4", "LOCAL_RANK", "0", "LOCAL_WORLD_SIZE", "2",
		"MASTER_ADDR", "head", "MASTER_PORT", "29500"))
	if err != nil || !ok || l.Rank != 2 || l.Size != 4 || l.LocalSize != 2 || l.Addr != "head:29500" || l.Launcher != "torchrun" {
		t.Errorf("torchrun: %+v %v %v", l, ok, err)
	}
	l, ok, err = FromEnv(env("SLURM_PROCID", "3", "SLURM_NTASKS", "4", "SLURM_STEP_ID", "0",
		"SLURM_JOB_NODELIST", "cn[07-10]", "SLURM_JOB_ID", "123456"))
	if err != nil || !ok || l.Rank != 3 || l.Size != 4 || l.Addr != "cn07:23456" || l.JobID != "123456" {
		t.Errorf("slurm: %+v %v %v", l, ok, err)
	}
	l, ok, err = FromEnv(env("SLURM_PROCID", "1", "SLURM_STEP_NUM_TASKS", "2", "SLURM_NTASKS", "8", "SLURM_STEP_ID", "1",
		"SLURM_STEP_NODELIST", "b[2-3]", "SLURM_JOB_NODELIST", "a,b[2-3]", "MASTER_PORT", "4000"))
	if err != nil || !ok || l.Size != 2 || l.Addr != "b2:4000" {
		t.Errorf("slurm step: %+v %v %v", l, ok, err)
	}
	// a batch script (no step) and single processes are not distributed
	for _, e := range []func(string) string{env(), env("SLURM_PROCID", "0", "SLURM_NTASKS", "4", "SLURM_JOB_NODELIST", "a[1-4]"),
		env("RANK", "0", "WORLD_SIZE", "1")} {
		if _, ok, err := FromEnv(e); ok || err != nil {
			t.Errorf("want no launcher, got %v %v", ok, err)
		}
	}
	for _, e := range []func(string) string{env("RANK", "4", "WORLD_SIZE", "4", "MASTER_ADDR", "h", "MASTER_PORT", "1"),
		env("RANK", "0", "WORLD_SIZE", "2", "MASTER_PORT", "1"), env("RANK", "x", "WORLD_SIZE", "2"),
		env("RANK", "0", "WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "70000"),
		env("SLURM_PROCID", "0", "SLURM_NTASKS", "2", "SLURM_STEP_ID", "0", "SLURM_JOB_NODELIST", "a[", "SLURM_JOB_ID", "1")} {
		if _, _, err := FromEnv(e); err == nil {
			t.Errorf("want an error")
		}
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// joinAll starts n ranks in this process on loopback.
func joinAll(t *testing.T, n int, opt Options) []*Group {
	t.Helper()
	gs, err := LoopbackJob(n, []byte("key"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, g := range gs {
			g.Close()
		}
	})
	return gs
}

// each runs f on every rank concurrently.
func each(gs []*Group, f func(g *Group) error) []error {
	errs := make([]error, len(gs))
	var wg sync.WaitGroup
	for i, g := range gs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(g) }()
	}
	wg.Wait()
	return errs
}

func TestAllReduceOrder(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4} {
		gs := joinAll(t, n, Options{})
		size := 2*pieceFloats + 12345
		rng := rand.New(rand.NewPCG(1, uint64(n)))
		parts := make([][]float32, n)
		for r := range parts {
			parts[r] = make([]float32, size)
			for i := range parts[r] {
				parts[r][i] = float32(rng.NormFloat64() * float64(int(1)<<rng.IntN(20)))
			}
		}
		// what one process computes: acc += part_r in order, twice (two rounds)
		want := make([]float32, size)
		for range 2 {
			for r := range n {
				for i, v := range parts[r] {
					want[i] += v
				}
			}
		}
		accs := make([][]float32, n)
		for _, err := range each(gs, func(g *Group) error {
			acc := make([]float32, size)
			accs[g.Rank()] = acc
			p1 := g.ReduceAsync(acc, parts[g.Rank()], n)
			p2 := g.ReduceAsync(acc, parts[g.Rank()], n)
			if err := p1.Wait(); err != nil {
				return err
			}
			if err := p2.Wait(); err != nil {
				return err
			}
			return g.AllGatherAsync(acc).Wait()
		}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		for r := range n {
			if !slices.Equal(accs[r], want) {
				t.Fatalf("%d ranks: rank %d differs from the sequential sum", n, r)
			}
		}
		// AllReduce in place, and a round where only the first ranks contribute
		for _, err := range each(gs, func(g *Group) error {
			v := slices.Clone(parts[g.Rank()])
			if err := g.AllReduce(v); err != nil {
				return err
			}
			w := make([]float32, size)
			copy(w, parts[0])
			for r := 1; r < n; r++ {
				for i, x := range parts[r] {
					w[i] += x
				}
			}
			if !slices.Equal(v, w) {
				return fmt.Errorf("rank %d: AllReduce differs", g.Rank())
			}
			acc := make([]float32, 10)
			var part []float32
			if g.Rank() == 0 {
				part = []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
			}
			if err := g.ReduceAsync(acc, part, 1).Wait(); err != nil {
				return err
			}
			if err := g.AllGatherAsync(acc).Wait(); err != nil {
				return err
			}
			if acc[9] != 10 || acc[0] != 1 {
				return fmt.Errorf("rank %d: partial round gave %v", g.Rank(), acc)
			}
			bs, err := g.AllGather([]byte(strconv.Itoa(g.Rank())))
			if err != nil {
				return err
			}
			for r, b := range bs {
				if string(b) != strconv.Itoa(r) {
					return fmt.Errorf("AllGather: %q at %d", b, r)
				}
			}
			return nil
		}) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestStrangerRefused(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	done := make(chan error, 1)
	var g0 *Group
	go func() {
		var err error
		g0, err = Join(Launch{Rank: 0, Size: 2, Addr: addr}, []byte("right"), Options{Join: 20 * time.Second}, t.Logf)
		done <- err
	}()
	// a stranger with another key is refused, and rank 0 keeps waiting
	var err error
	for range 100 {
		_, err = Join(Launch{Rank: 1, Size: 2, Addr: addr}, []byte("wrong"), Options{Join: time.Second}, nil)
		if err != nil && strings.Contains(err.Error(), "refused") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("stranger: %v", err)
	}
	// a raw connection that says nothing is dropped too
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		c.Close()
	}
	g1, err := Join(Launch{Rank: 1, Size: 2, Addr: addr}, []byte("right"), Options{Join: 20 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	g0.Close()
	g1.Close()
}

func TestDeadPeer(t *testing.T) {
	gs := joinAll(t, 3, Options{Silence: 2 * time.Second})
	// rank 2 vanishes without a word: its connections just close
	for _, p := range gs[2].peers {
		if p != nil {
			p.conn.Close()
		}
	}
	start := time.Now()
	errs := each(gs[:2], func(g *Group) error { return g.AllReduce(make([]float32, 100)) })
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "rank 2") {
			t.Errorf("rank %d: %v, want an error naming rank 2", r, err)
		}
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
}

func TestSilentPeer(t *testing.T) {
	gs := joinAll(t, 2, Options{Silence: 1500 * time.Millisecond})
	// rank 1 stops sending anything (a frozen process): hold its write locks
	for _, p := range gs[1].peers {
		if p != nil {
			p.wmu.Lock()
		}
	}
	start := time.Now()
	err := gs[0].AllReduce(make([]float32, 100))
	if err == nil || !strings.Contains(err.Error(), "rank 1") || !strings.Contains(err.Error(), "sent nothing") {
		t.Errorf("got %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %s", el)
	}
	for _, p := range gs[1].peers {
		if p != nil {
			p.wmu.Unlock()
		}
	}
}

func TestAbortTellsPeers(t *testing.T) {
	gs := joinAll(t, 3, Options{})
	gs[1].Abort(fmt.Errorf("bad data on line 7"))
	errs := each([]*Group{gs[0], gs[2]}, func(g *Group) error { _, err := g.AllGather(nil); return err })
	for _, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "rank 1") || !strings.Contains(err.Error(), "bad data on line 7") {
			t.Errorf("got %v", err)
		}
	}
}

func TestStuckPeer(t *testing.T) {
	// rank 1 keeps its heartbeats but never joins the collective
	gs := joinAll(t, 2, Options{Silence: 3 * time.Second, Progress: 2 * time.Second})
	start := time.Now()
	err := gs[0].AllReduce(make([]float32, 10))
	if err == nil || !strings.Contains(err.Error(), "rank 1") || !strings.Contains(err.Error(), "no progress") {
		t.Errorf("got %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %s", el)
	}
}

// FuzzHandshake: whatever a stranger sends to a rendezvous is refused
// without a panic or a hang.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 2, 0, 0, 0, 0x39, 0x30, 3, 'a', 'b', 'c'})
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Add(make([]byte, 10+1+255+32))
	mac := macFunc(hmac.New(sha256.New, []byte("job key")))
	f.Fuzz(func(t *testing.T, in []byte) {
		server, client := net.Pipe()
		defer server.Close()
		go func() {
			defer client.Close()
			client.SetDeadline(time.Now().Add(time.Second))
			go io.Copy(io.Discard, client) // the greeting and any answer
			client.Write(in)
		}()
		server.SetDeadline(time.Now().Add(time.Second))
		if h, _, err := handshake(server, mac, 4); err == nil {
			t.Fatalf("a stranger was accepted as %+v", h)
		}
	})
}
