// Package dist runs data-parallel jobs: it reads where a process stands from
// its launcher's environment (torchrun, Slurm's srun, JobSet and Kubeflow
// manifests), meets the other processes at rank 0's address over TCP with
// every connection authenticated by the job's key, keeps every pair of
// processes connected with heartbeats so that a rank that dies or freezes
// fails the job naming it, and sums float32 buffers across processes with
// an all-reduce whose result is bit-identical on every rank and to adding
// the ranks' buffers in rank order in one process.
package dist
