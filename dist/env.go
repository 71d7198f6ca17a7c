package dist

import (
	"fmt"
	"net"
	"strconv"
)

// Launch is where this process stands in a data-parallel job, as its
// launcher described it.
type Launch struct {
	Rank, Size int
	// LocalRank and LocalSize place the process among the job's processes
	// on its machine (torchrun's LOCAL_RANK, LOCAL_WORLD_SIZE): the kernels'
	// threads are shared among them. Slurm binds each task to its own CPUs,
	// so there LocalSize stays 1.
	LocalRank, LocalSize int
	Addr                 string // host:port of rank 0's rendezvous
	Launcher             string // "torchrun" or "slurm", for messages
	JobID                string // tells apart jobs that reuse a rendezvous address
}

// FromEnv reads a launcher's environment through getenv: torchrun's RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT (also
// set by the Kubeflow Trainer and by JobSet manifests), else, inside an srun
// step (SLURM_STEP_ID set), Slurm's SLURM_PROCID, SLURM_STEP_NUM_TASKS (or
// SLURM_NTASKS) and the first host of SLURM_STEP_NODELIST (or
// SLURM_JOB_NODELIST), with MASTER_PORT or else a port derived from
// SLURM_JOB_ID. ok is false when no launcher is found or the job has one
// process; an inconsistent environment is an error naming the variable.
func FromEnv(getenv func(string) string) (l Launch, ok bool, err error) {
	num := func(name string, min int) (int, error) {
		v, err := strconv.Atoi(getenv(name))
		if err != nil || v < min {
			return 0, fmt.Errorf("%s=%q: want an integer ≥ %d", name, getenv(name), min)
		}
		return v, nil
	}
	// check validates l and returns ok true when it has several ranks.
	check := func() (Launch, bool, error) {
		if l.Rank >= l.Size {
			return Launch{}, false, fmt.Errorf("%s: rank %d outside a job of %d processes", l.Launcher, l.Rank, l.Size)
		}
		if l.LocalSize < 1 || l.LocalRank >= l.LocalSize {
			l.LocalRank, l.LocalSize = 0, 1
		}
		return l, l.Size > 1, nil
	}
	switch {
	case getenv("RANK") != "" || getenv("WORLD_SIZE") != "":
		l.Launcher, l.JobID = "torchrun", getenv("TORCHELASTIC_RUN_ID")
		if l.Rank, err = num("RANK", 0); err != nil {
			return Launch{}, false, err
		}
		if l.Size, err = num("WORLD_SIZE", 1); err != nil {
			return Launch{}, false, err
		}
		l.LocalRank, _ = strconv.Atoi(getenv("LOCAL_RANK"))
		l.LocalSize, _ = strconv.Atoi(getenv("LOCAL_WORLD_SIZE"))
		if l.Size == 1 {
			return check()
		}
		host := getenv("MASTER_ADDR")
		if host == "" {
			return Launch{}, false, fmt.Errorf("RANK and WORLD_SIZE=%d are set but MASTER_ADDR is not", l.Size)
		}
		port, err := num("MASTER_PORT", 1)
		if err != nil || port > 65535 {
			return Launch{}, false, fmt.Errorf("MASTER_PORT=%q: want a TCP port", getenv("MASTER_PORT"))
		}
		l.Addr = net.JoinHostPort(host, strconv.Itoa(port))
		return check()
	case getenv("SLURM_PROCID") != "" && (getenv("SLURM_STEP_ID") != "" || getenv("SLURM_STEPID") != ""):
		l.Launcher, l.JobID = "slurm", getenv("SLURM_JOB_ID")
		if l.Rank, err = num("SLURM_PROCID", 0); err != nil {
			return Launch{}, false, err
		}
		tasks := "SLURM_STEP_NUM_TASKS"
		if getenv(tasks) == "" {
			tasks = "SLURM_NTASKS"
		}
		if l.Size, err = num(tasks, 1); err != nil {
			return Launch{}, false, err
		}
		l.LocalRank, l.LocalSize = 0, 1
		if l.Size == 1 {
			return check()
		}
		nodes := "SLURM_STEP_NODELIST"
		if getenv(nodes) == "" {
			nodes = "SLURM_JOB_NODELIST"
		}
		host, err := FirstHost(getenv(nodes))
		if err != nil {
			return Launch{}, false, fmt.Errorf("%s: %w", nodes, err)
		}
		port := 0
		if getenv("MASTER_PORT") != "" {
			if port, err = num("MASTER_PORT", 1); err != nil || port > 65535 {
				return Launch{}, false, fmt.Errorf("MASTER_PORT=%q: want a TCP port", getenv("MASTER_PORT"))
			}
		} else {
			id, err := num("SLURM_JOB_ID", 0)
			if err != nil {
				return Launch{}, false, fmt.Errorf("set MASTER_PORT (or SLURM_JOB_ID): %w", err)
			}
			// A port per job, so two jobs sharing a first node do not meet.
			port = 20000 + id%20000
		}
		l.Addr = net.JoinHostPort(host, strconv.Itoa(port))
		return check()
	}
	return Launch{}, false, nil
}
