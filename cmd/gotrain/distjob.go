package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/gotrain/gotrain/dist"
	"github.com/gotrain/gotrain/kernels"
	"github.com/gotrain/gotrain/model"
	"github.com/gotrain/gotrain/train"
)

// joinJob joins the data-parallel job the launcher's environment describes
// (--dist auto), or returns nil for a single process (--dist off, or no
// launcher). The job key is the command line, so only processes started
// with the same arguments meet; processes sharing a machine share its cores.
func joinJob(mode string, args []string) (g *dist.Group, localRanks int, err error) {
	switch mode {
	case "off":
		return nil, 1, nil
	case "auto":
	default:
		return nil, 0, fmt.Errorf("--dist %q: want auto or off", mode)
	}
	l, ok, err := dist.FromEnv(os.Getenv)
	if err != nil {
		return nil, 0, fmt.Errorf("--dist auto: %w", err)
	}
	if !ok {
		return nil, 1, nil
	}
	if l.LocalSize > 1 && os.Getenv("GOTRAIN_THREADS") == "" {
		kernels.SetThreads(max(1, runtime.NumCPU()/l.LocalSize))
	}
	opt := dist.Options{}
	for _, v := range []struct {
		name string
		d    *time.Duration
	}{{"GOTRAIN_DIST_TIMEOUT", &opt.Silence}, {"GOTRAIN_DIST_PROGRESS", &opt.Progress}} {
		if s := os.Getenv(v.name); s != "" {
			if *v.d, err = time.ParseDuration(s); err != nil || *v.d <= 0 {
				return nil, 0, fmt.Errorf("%s=%q: want a duration such as 30s", v.name, s)
			}
		}
	}
	key := sha256.Sum256([]byte(strings.Join(args, "\x00")))
	fmt.Fprintf(os.Stderr, "dist: rank %d of %d (%s), meeting at %s\n", l.Rank, l.Size, l.Launcher, l.Addr)
	g, err = dist.Join(l, key[:], opt, func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
	if err != nil {
		return nil, 0, err
	}
	// A peer's failure reaches this rank's collectives; if it is computing
	// instead, end the process a little later, so the job never hangs on it.
	go func() {
		<-g.Failed()
		if g.Closed() {
			return
		}
		time.Sleep(10 * time.Second)
		fmt.Fprintf(os.Stderr, "gotrain: rank %d: %v\n", l.Rank, g.Err())
		os.Exit(1)
	}()
	return g, l.LocalSize, nil
}

// rank is this process's rank (0 alone).
func (f *trainFlags) rank() int {
	if f.group == nil {
		return 0
	}
	return f.group.Rank()
}

// ranks is the job's number of processes.
func (f *trainFlags) ranks() int {
	if f.group == nil {
		return 1
	}
	return f.group.Size()
}

// batchShape describes a step's batch: "4×2" alone, "4×2×8 ranks" in a job.
func (f *trainFlags) batchShape() string {
	s := fmt.Sprintf("%d×%d", f.cfg.BatchSize, f.cfg.GradAccum)
	if f.ranks() > 1 {
		s += fmt.Sprintf("×%d ranks", f.ranks())
	}
	return s
}

// checkPlan makes the memory plan of one rank and checks it against this
// machine's memory shared by the job's processes on it.
func (f *trainFlags) checkPlan(plan model.Plan) (model.Plan, error) {
	if f.ranks() > 1 {
		in := plan.Input
		in.Ranks = f.ranks()
		plan = plan.Replan(in)
	}
	if memCheckOff() {
		return plan, nil
	}
	avail := model.Available()
	if avail > 0 && f.localRanks > 1 {
		avail /= int64(f.localRanks)
	}
	return plan, checkMemoryAvail(plan, avail)
}

// latestCheckpoint is --resume auto's checkpoint: rank 0's newest, which
// every rank must be able to read (--out on a shared filesystem).
func (f *trainFlags) latestCheckpoint() (string, error) {
	dir := train.LatestCheckpoint(*f.out)
	if f.group == nil {
		return dir, nil
	}
	all, err := f.group.AllGather([]byte(dir))
	if err != nil {
		return "", err
	}
	dir = string(all[0])
	if dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "trainer_state.json")); err != nil {
			return "", fmt.Errorf("rank %d cannot read rank 0's checkpoint %s: --out must be on a filesystem every rank sees: %w", f.rank(), dir, err)
		}
	}
	return dir, nil
}

// done ends this rank's part in the job: on an error every other rank is
// told (and fails naming this one), else the connections close.
func (f *trainFlags) done(err *error) {
	if f.group == nil {
		return
	}
	if *err != nil && !errors.Is(*err, train.ErrInterrupted) {
		f.group.Abort(*err)
	}
	f.group.Close()
}
