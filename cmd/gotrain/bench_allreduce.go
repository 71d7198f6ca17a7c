package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gotrain/gotrain/dist"
)

// benchAllReduce measures the data-parallel all-reduce between processes on
// loopback against raw TCP between the same processes in the same run:
// the parent starts --ranks copies of itself as a torchrun-style job.
func benchAllReduce(args []string) error {
	fs := newFlags("bench allreduce", "[--ranks N] [--mb 35,280] [--runs R]")
	ranks := fs.Int("ranks", 2, "processes")
	sizes := fs.String("mb", "35,280", "buffer sizes in MB (the LoRA r 16 gradients of the 0.5B and 14B shapes)")
	runs := fs.Int("runs", 5, "timed all-reduces per size (after one warm-up)")
	child := fs.Bool("child", false, "internal: run as one rank of the benchmark job")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var mbs []int
	for _, s := range strings.Split(*sizes, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v <= 0 || v > 4096 {
			return fmt.Errorf("--mb %q: want sizes in MB between 1 and 4096", *sizes)
		}
		mbs = append(mbs, v)
	}
	if *ranks < 2 || *ranks > 64 || *runs < 1 {
		return fmt.Errorf("--ranks must be 2..64 and --runs ≥ 1")
	}
	if *child {
		return allReduceChild(mbs, *runs)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmds := make([]*exec.Cmd, *ranks)
	var out io.ReadCloser
	for r := range cmds {
		c := exec.Command(exe, "bench", "allreduce", "--child", "--mb", *sizes, "--runs", strconv.Itoa(*runs))
		c.Env = append(os.Environ(), "RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(*ranks),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+port, "GOTRAIN_AS_CLI=1")
		c.Stderr = os.Stderr
		if r == 0 {
			if out, err = c.StdoutPipe(); err != nil {
				return err
			}
		}
		if err := c.Start(); err != nil {
			return err
		}
		cmds[r] = c
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		fmt.Println(sc.Text())
	}
	var first error
	for r, c := range cmds {
		if err := c.Wait(); err != nil && first == nil {
			first = fmt.Errorf("rank %d: %w", r, err)
		}
	}
	return first
}

// allReduceChild is one rank: raw TCP between the ranks, then the
// all-reduce of each size; rank 0 prints the results.
func allReduceChild(mbs []int, runs int) error {
	l, ok, err := dist.FromEnv(os.Getenv)
	if err != nil || !ok {
		return fmt.Errorf("bench allreduce --child: no job in the environment (%v)", err)
	}
	g, err := dist.Join(l, []byte("bench allreduce"), dist.Options{}, nil)
	if err != nil {
		return err
	}
	defer g.Close()
	// raw loopback TCP as the all-reduce uses it: every rank streams the
	// biggest buffer to the next one at the same time (on loopback the
	// "links" are the same cores, so one lone stream would overstate them)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	all, err := g.AllGather([]byte(ln.Addr().String()))
	if err != nil {
		return err
	}
	for _, mb := range mbs {
		v := make([]float32, mb<<20/4)
		for i := range v {
			v[i] = float32(i%1000) * 1e-3
		}
		if err := g.AllReduce(v); err != nil { // warm-up
			return err
		}
		// raw TCP and the all-reduce alternate, so that each pair saw about
		// the same load; the medians of the pairs' ratios and the best of
		// each are reported
		W := float64(g.Size())
		bytes := float64(4 * len(v))
		var ts, raws, ratios []float64
		for range runs {
			raw, err := rawTCP(g, ln, all, mb<<20)
			if err != nil {
				return err
			}
			t0 := time.Now()
			if err := g.AllReduce(v); err != nil {
				return err
			}
			el := time.Since(t0).Seconds()
			ts, raws = append(ts, el), append(raws, raw)
			// bus bandwidth: what each rank sends per second, 2(W−1)/W of the
			// buffer per all-reduce, as NCCL's tests report it
			ratios = append(ratios, 2*(W-1)/W*bytes/el/1e9/raw)
		}
		sort.Float64s(ts)
		sort.Float64s(raws)
		sort.Float64s(ratios)
		if g.Rank() == 0 {
			bus := 2 * (W - 1) / W * bytes / ts[0] / 1e9
			b, _ := json.Marshal(map[string]any{"bench": "allreduce", "ranks": g.Size(), "mb": mb,
				"median_s": ts[len(ts)/2], "min_s": ts[0], "best_bus_GBps": bus, "best_raw_tcp_GBps": raws[len(raws)-1],
				"best_over_best": bus / raws[len(raws)-1], "median_pair_ratio": ratios[len(ratios)/2]})
			fmt.Println(string(b))
		}
	}
	return nil
}

// rawTCP returns the rate in GB/s at which this rank receives n bytes
// while every rank streams n bytes to the next one.
func rawTCP(g *dist.Group, ln net.Listener, all [][]byte, n int) (float64, error) {
	errc := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", string(all[(g.Rank()+1)%g.Size()]))
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 4<<20)
		for sent := 0; sent < n; sent += len(buf) {
			if _, err := c.Write(buf[:min(len(buf), n-sent)]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	c, err := ln.Accept()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	got, err := io.CopyBuffer(io.Discard, c, make([]byte, 4<<20))
	c.Close()
	if err != nil || got != int64(n) {
		return 0, fmt.Errorf("raw TCP: %d of %d bytes: %v", got, n, err)
	}
	rate := float64(n) / time.Since(t0).Seconds() / 1e9
	if err := <-errc; err != nil {
		return 0, err
	}
	_, err = g.AllGather(nil) // everyone done before the next measurement
	return rate, err
}
