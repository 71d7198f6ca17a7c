package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rankProc is one rank of a job run as a separate process.
type rankProc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

// startJob starts n copies of the CLI with args, each with env(rank) added
// to its environment, bounded by a minute and a half.
func startJob(t *testing.T, n int, env func(rank int) []string, args ...string) []rankProc {
	t.Helper()
	ps := make([]rankProc, n)
	for r := range n {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(append(os.Environ(), "GOTRAIN_AS_CLI=1", "GOTRAIN_DIST_TIMEOUT=20s"), env(r)...)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ps[r] = rankProc{cmd, &buf}
	}
	t.Cleanup(func() {
		for _, p := range ps {
			p.cmd.Process.Kill()
		}
	})
	return ps
}

// wait waits for every rank, within limit; it returns their exit codes.
func waitJob(t *testing.T, ps []rankProc, limit time.Duration) []int {
	t.Helper()
	codes := make([]int, len(ps))
	done := make(chan struct{})
	go func() {
		for i, p := range ps {
			p.cmd.Wait()
			codes[i] = p.cmd.ProcessState.ExitCode()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(limit):
		for _, p := range ps {
			p.cmd.Process.Kill()
		}
		<-done
		for r, p := range ps {
			t.Logf("rank %d:\n%s", r, p.out)
		}
		t.Fatalf("the job did not end within %s", limit)
	}
	return codes
}

func loopbackPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// torchrunEnv is what torchrun sets for rank r of n on one machine.
func torchrunEnv(n int, port string) func(int) []string {
	return func(r int) []string {
		return []string{"RANK=" + strconv.Itoa(r), "WORLD_SIZE=" + strconv.Itoa(n), "LOCAL_RANK=" + strconv.Itoa(r),
			"LOCAL_WORLD_SIZE=" + strconv.Itoa(n), "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port}
	}
}

// slurmEnv is what srun sets for task r of n, all on one node.
func slurmEnv(n int, port string) func(int) []string {
	return func(r int) []string {
		return []string{"SLURM_PROCID=" + strconv.Itoa(r), "SLURM_NTASKS=" + strconv.Itoa(n), "SLURM_STEP_NUM_TASKS=" + strconv.Itoa(n),
			"SLURM_STEP_ID=0", "SLURM_JOB_ID=4242", "SLURM_LOCALID=" + strconv.Itoa(r),
			"SLURM_JOB_NODELIST=127.0.0.1", "SLURM_STEP_NODELIST=127.0.0.1", "MASTER_PORT=" + port}
	}
}

// TestDataParallelProcesses: 2 ranks (torchrun's variables) and 4 ranks
// (Slurm's) train SFT and DPO adapters byte-identical to one process with
// the same global batch; a rank killed mid-run fails the job, named.
func TestDataParallelProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs several training processes")
	}
	tmp := t.TempDir()
	m := filepath.Join(tmp, "model")
	if out, code := gotrain(t, "init-model", "--size", "tiny", "--out", m); code != 0 {
		t.Fatal(out)
	}
	var sft, pairs []string
	for i := range 11 {
		sft = append(sft, fmt.Sprintf(`{"instruction": "Pick a number near %d.", "input": "", "output": "Response: %d"}`, i, i%5+1))
	}
	for i := range 40 { // two blocks of reference scoring
		pairs = append(pairs, fmt.Sprintf(`{"prompt": "Pick %d.", "chosen": "Response: %d", "rejected": "Response: %d"}`, i, i%5+1, (i+2)%5+1))
	}
	sftData := writeFile(t, filepath.Join(tmp, "sft.jsonl"), strings.Join(sft, "\n")+"\n")
	pairData := writeFile(t, filepath.Join(tmp, "pairs.jsonl"), strings.Join(pairs, "\n")+"\n")
	common := []string{"--base", m, "--max-steps", "3", "--batch-size", "1", "--lr", "1e-2", "--lora-r", "4", "--max-len", "96"}
	for _, tc := range []struct {
		cmd, data string
		n         int
		env       func(int, string) func(int) []string
	}{
		{"sft", sftData, 2, torchrunEnv},
		{"sft", sftData, 4, slurmEnv},
		{"dpo", pairData, 2, slurmEnv},
	} {
		args := append([]string{tc.cmd, "--data", tc.data}, common...)
		one := filepath.Join(tmp, fmt.Sprintf("%s-one-%d", tc.cmd, tc.n))
		if out, code := gotrain(t, append(args, "--out", one, "--grad-accum", strconv.Itoa(2*tc.n), "--dist", "off")...); code != 0 {
			t.Fatalf("one process: %s", out)
		}
		job := filepath.Join(tmp, fmt.Sprintf("%s-job-%d", tc.cmd, tc.n))
		ps := startJob(t, tc.n, tc.env(tc.n, loopbackPort(t)), append(args, "--out", job, "--grad-accum", "2")...)
		for r, code := range waitJob(t, ps, 90*time.Second) {
			if code != 0 {
				t.Fatalf("%s ×%d: rank %d exited %d:\n%s", tc.cmd, tc.n, r, code, ps[r].out)
			}
		}
		if !strings.Contains(ps[0].out.String(), fmt.Sprintf("×%d ranks", tc.n)) {
			t.Errorf("rank 0's output does not mention the ranks:\n%s", ps[0].out)
		}
		a, err1 := os.ReadFile(filepath.Join(one, "adapter_model.safetensors"))
		b, err2 := os.ReadFile(filepath.Join(job, "adapter_model.safetensors"))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s ×%d: the adapter differs from one process's (%v, %v)\nrank 0:\n%s", tc.cmd, tc.n, err1, err2, ps[0].out)
		}
		ma, _ := os.ReadFile(filepath.Join(one, "metrics.jsonl"))
		mb, _ := os.ReadFile(filepath.Join(job, "metrics.jsonl"))
		if strip := func(b []byte) string {
			var s []string
			for _, l := range strings.Split(string(b), "\n") {
				if i := strings.Index(l, `"tokens_per_s"`); i >= 0 {
					l = l[:i]
				}
				s = append(s, l)
			}
			return strings.Join(s, "\n")
		}; strip(ma) != strip(mb) {
			t.Errorf("%s ×%d: metrics differ:\n%s\none process:\n%s", tc.cmd, tc.n, mb, ma)
		}
	}

	// SIGTERM to every rank (a preempted job): all stop after the same step,
	// rank 0 saves a checkpoint, and the job restarted with --resume auto
	// ends with one process's adapter
	args := append([]string{"sft", "--data", sftData}, common...)
	args = append(args, "--max-steps", "12") // the last value of a flag counts
	one := filepath.Join(tmp, "resume-one")
	if out, code := gotrain(t, append(args, "--out", one, "--grad-accum", "4", "--dist", "off")...); code != 0 {
		t.Fatalf("one process: %s", out)
	}
	job := filepath.Join(tmp, "resume-job")
	args = append(args, "--out", job, "--grad-accum", "2", "--resume", "auto")
	ps := startJob(t, 2, torchrunEnv(2, loopbackPort(t)), args...)
	for i := 0; i < 600; i++ {
		if b, _ := os.ReadFile(filepath.Join(job, "metrics.jsonl")); bytes.Count(b, []byte("\n")) >= 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range ps {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	codes := waitJob(t, ps, 60*time.Second)
	if codes[0] == 0 {
		t.Log("the job was done before SIGTERM came: resume not exercised")
	} else {
		for r, p := range ps {
			if codes[r] == 0 || !strings.Contains(p.out.String(), "interrupted") {
				t.Fatalf("SIGTERM: rank %d exited %d:\n%s", r, codes[r], p.out)
			}
		}
		ps = startJob(t, 2, torchrunEnv(2, loopbackPort(t)), args...)
		for r, code := range waitJob(t, ps, 90*time.Second) {
			if code != 0 {
				t.Fatalf("resumed job: rank %d exited %d:\n%s", r, code, ps[r].out)
			}
		}
		if !strings.Contains(ps[0].out.String(), "resumed from") {
			t.Errorf("the restarted job did not resume:\n%s", ps[0].out)
		}
	}
	a, _ := os.ReadFile(filepath.Join(one, "adapter_model.safetensors"))
	if b, _ := os.ReadFile(filepath.Join(job, "adapter_model.safetensors")); len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("the resumed job's adapter differs from one process's")
	}

	// a rank killed mid-run: the others fail within a minute naming it
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		job := filepath.Join(tmp, fmt.Sprintf("killed-%d", sig))
		args := append(append([]string{"sft", "--data", sftData, "--out", job}, common...), "--max-steps", "100000")
		ps = startJob(t, 3, torchrunEnv(3, loopbackPort(t)), args...)
		for i := 0; ; i++ {
			if b, _ := os.ReadFile(filepath.Join(job, "metrics.jsonl")); bytes.Count(b, []byte("\n")) >= 2 {
				break
			}
			if i > 600 {
				t.Fatalf("no progress:\n%s", ps[0].out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		ps[2].cmd.Process.Signal(sig)
		start := time.Now()
		codes = waitJob(t, ps[:2], 60*time.Second)
		t.Logf("signal %d: the job failed after %s", sig, time.Since(start).Round(time.Millisecond))
		ps[2].cmd.Process.Kill()
		for r, code := range codes {
			if code == 0 || !strings.Contains(ps[r].out.String(), "rank 2 (") {
				t.Errorf("signal %d: rank %d exited %d without naming rank 2:\n%s", sig, r, code, ps[r].out)
			}
		}
	}
}
