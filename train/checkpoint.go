package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/internal/inputfile"
	"github.com/gotrain/gotrain/model/safetensors"
)

// trainerState is a checkpoint's trainer_state.json.
type trainerState struct {
	Step        int    `json:"step"`
	TotalSteps  int    `json:"total_steps"`
	Fingerprint string `json:"fingerprint"` // of the data and the settings that fix the data order
	Config      Config `json:"config"`
}

// fingerprint hashes the training data and the settings a bitwise resume
// depends on, so a resume with other data or batch settings is refused. The
// global batch counts, not how it is split over ranks: a job may resume
// another's checkpoint with other world sizes and the same global batch.
func (t *Trainer) fingerprint() string {
	h := fnv.New64a()
	c := t.cfg
	fmt.Fprintf(h, "%d %d %d %s %d %g %s %g %g %g|", c.BatchSize, t.accum(), t.sched.TotalSteps, c.Optim, c.Seed,
		c.Dropout, c.Scheduler, c.LR, c.WarmupRatio, c.MaxGradNorm)
	if t.full != nil {
		fmt.Fprint(h, "full|")
	}
	if a := t.routerAuxCoef(); a != 0 && t.m.Config.SparseLayers() > 0 {
		fmt.Fprintf(h, "aux %g|", a)
	}
	t.task.fingerprint(h)
	return strconv.FormatUint(h.Sum64(), 16)
}

const checkpointPrefix = "checkpoint-"

// SaveCheckpoint writes OutDir/checkpoint-<step>/ (adapter or float32 master
// weights, optimizer state, trainer state) through a temporary directory renamed into place, then
// removes checkpoints beyond SaveLimit.
//
// In a data-parallel job only rank 0 writes.
func (t *Trainer) SaveCheckpoint() error {
	if t.cfg.OutDir == "" || t.g.Rank() != 0 {
		return nil
	}
	final := filepath.Join(t.cfg.OutDir, fmt.Sprintf("%s%d", checkpointPrefix, t.step))
	tmp := filepath.Join(t.cfg.OutDir, fmt.Sprintf(".tmp-%s%d", checkpointPrefix, t.step))
	os.RemoveAll(tmp)
	if err := t.saveCheckpoint(tmp); err != nil {
		return err
	}
	var ts []safetensors.Tensor
	for name, v := range t.opt.State() {
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: []int{len(v)}, Data: safetensors.BytesOfF32(v)})
	}
	if bs, ok := t.opt.(byteStater); ok {
		for name, v := range bs.ByteState() {
			ts = append(ts, safetensors.Tensor{Name: name, DType: "U8", Shape: []int{len(v)}, Data: v})
		}
	}
	if len(ts) > 0 {
		if err := safetensors.Write(filepath.Join(tmp, "optimizer.safetensors"), ts, nil); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	st, err := json.MarshalIndent(trainerState{Step: t.step, TotalSteps: t.sched.TotalSteps, Fingerprint: t.fingerprint(), Config: t.cfg}, "", "  ")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, "trainer_state.json"), st); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := os.RemoveAll(final); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	// The rename is durable only once OutDir itself is synced.
	if err := atomicfile.SyncDir(t.cfg.OutDir); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return t.pruneCheckpoints()
}

// checkpoints lists OutDir's checkpoint steps, ascending.
func checkpoints(dir string) []int {
	ents, _ := os.ReadDir(dir)
	var steps []int
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), checkpointPrefix); ok && e.IsDir() {
			if s, err := strconv.Atoi(n); err == nil {
				steps = append(steps, s)
			}
		}
	}
	sort.Ints(steps)
	return steps
}

func (t *Trainer) pruneCheckpoints() error {
	steps := checkpoints(t.cfg.OutDir)
	for t.cfg.SaveLimit > 0 && len(steps) > t.cfg.SaveLimit {
		if err := os.RemoveAll(filepath.Join(t.cfg.OutDir, fmt.Sprintf("%s%d", checkpointPrefix, steps[0]))); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		steps = steps[1:]
	}
	return nil
}

// LatestCheckpoint returns the newest checkpoint directory under outDir, or "".
func LatestCheckpoint(outDir string) string {
	steps := checkpoints(outDir)
	if len(steps) == 0 {
		return ""
	}
	return filepath.Join(outDir, fmt.Sprintf("%s%d", checkpointPrefix, steps[len(steps)-1]))
}

// Resume restores the adapter, optimizer state and step from a checkpoint
// directory, refusing one made with other data or data-order settings.
func (t *Trainer) Resume(dir string) error {
	raw, err := inputfile.ReadFile(filepath.Join(dir, "trainer_state.json"), inputfile.MaxSmallFile)
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	var st trainerState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("train: resume: %s/trainer_state.json: %w", dir, err)
	}
	if st.Fingerprint != t.fingerprint() {
		return fmt.Errorf("train: resume: %s was made with other data or other batch, schedule, seed or optimizer settings", dir)
	}
	if err := t.restore(dir); err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	if p := filepath.Join(dir, "optimizer.safetensors"); fileExists(p) {
		f, err := safetensors.Open(p)
		if err != nil {
			return fmt.Errorf("train: resume: %w", err)
		}
		state := map[string][]float32{}
		codes := map[string][]uint8{}
		for _, name := range f.Names() {
			tn, _ := f.Tensor(name)
			if tn.DType == "U8" {
				codes[name] = tn.Data
				continue
			}
			v, err := tn.ToF32()
			if err != nil {
				f.Close()
				return fmt.Errorf("train: resume: %w", err)
			}
			state[name] = v
		}
		err = t.opt.SetState(state)
		if bs, ok := t.opt.(byteStater); ok && err == nil {
			err = bs.SetByteState(codes) // copies, before the file is closed
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("train: resume: %s: %w", p, err)
		}
	}
	t.step = st.Step
	if t.g.Rank() != 0 {
		return nil
	}
	return truncateMetrics(t.cfg.OutDir, t.step)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

const metricsFile = "metrics.jsonl"

func appendMetrics(dir string, info StepInfo) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	b, _ := json.Marshal(info)
	if err := atomicfile.Append(filepath.Join(dir, metricsFile), append(b, '\n')); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// truncateMetrics drops metrics lines of steps after step (left by a run that
// went on past its last checkpoint), so a resumed run's file reads as one run.
func truncateMetrics(dir string, step int) error {
	p := filepath.Join(dir, metricsFile)
	raw, err := inputfile.ReadFile(p, inputfile.MaxLargeFile)
	if err != nil {
		return nil
	}
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s struct {
			Step int `json:"step"`
		}
		if json.Unmarshal(sc.Bytes(), &s) == nil && s.Step <= step {
			keep.Write(sc.Bytes())
			keep.WriteByte('\n')
		}
	}
	if err := atomicfile.WriteFile(p, keep.Bytes()); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// ReadMetrics reads a metrics.jsonl written by Run.
func ReadMetrics(path string) ([]StepInfo, error) {
	raw, err := inputfile.ReadFile(path, inputfile.MaxLargeFile)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	var out []StepInfo
	for i, line := range bytes.Split(raw, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var s StepInfo
		if err := json.Unmarshal(line, &s); err != nil {
			return nil, fmt.Errorf("train: %s:%d: %w", path, i+1, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// SaveOutput writes the result into OutDir: the trained adapter with the
// base model's name recorded as PEFT does, or in full finetuning the whole
// model as a Hugging Face checkpoint in the base's dtype.
func (t *Trainer) SaveOutput(baseName string) error {
	if t.full != nil {
		return t.full.Save(t.cfg.OutDir)
	}
	t.ad.Config.BaseModel = baseName
	return t.ad.Save(t.cfg.OutDir)
}
