package kernels

import (
	"fmt"
	"math"
)

// LogProbs: for each row r of logits [rows×V], out[r] = log softmax(logits[r,:])[targets[r]].
// A negative target (HF's ignore index −100) gives out[r] = 0. logits is not
// modified.
func LogProbs(out, logits []float32, rows, V int, targets []int32) {
	needLen("LogProbs", "logits", logits, rows*V)
	needLen("LogProbs", "out", out, rows)
	checkTargets("LogProbs", targets, rows, V)
	k := opsKernels()
	parallelFor(rows, 16*V, func(lo, hi int) {
		buf := make([]float32, softmaxBlock)
		for r := lo; r < hi; r++ {
			t := targets[r]
			if t < 0 {
				out[r] = 0
				continue
			}
			row := logits[r*V : (r+1)*V]
			m, s := maxSumExp(k, row, buf)
			out[r] = float32(float64(row[t]) - float64(m) - math.Log(s))
		}
	})
}

// CrossEntropyGrad overwrites logits [rows×V] in place with
// dlogits = (softmax(row) − onehot(target))·scale[r] and returns
// Σ_r −log p(target_r)·scale[r]. Rows with scale 0 or a negative target become
// zero (masked tokens) and add nothing to the loss. A nil scale means 1 for
// every row.
func CrossEntropyGrad(logits []float32, rows, V int, targets []int32, scale []float32) float64 {
	needLen("CrossEntropyGrad", "logits", logits, rows*V)
	checkTargets("CrossEntropyGrad", targets, rows, V)
	if scale != nil {
		needLen("CrossEntropyGrad", "scale", scale, rows)
	}
	losses := make([]float64, rows)
	k := opsKernels()
	parallelFor(rows, 20*V, func(lo, hi int) {
		buf := make([]float32, softmaxBlock)
		for r := lo; r < hi; r++ {
			row := logits[r*V : (r+1)*V]
			sc := float32(1)
			if scale != nil {
				sc = scale[r]
			}
			t := targets[r]
			if sc == 0 || t < 0 {
				clear(row)
				continue
			}
			// Pass 1 reads the row for max and Σexp; pass 2 writes
			// p·|sc| = exp(x − m − log s + log|sc|) directly.
			m, s := maxSumExp(k, row, buf)
			lse := float64(m) + math.Log(s)
			losses[r] = -(float64(row[t]) - lse) * float64(sc)
			expShifted(k, row, float32(lse-math.Log(math.Abs(float64(sc)))))
			if sc < 0 {
				Scale(row, -1)
			}
			row[t] -= sc
		}
	})
	// Summed in row order after the parallel part: the result does not depend
	// on how rows were split over cores.
	var loss float64
	for _, l := range losses {
		loss += l
	}
	return loss
}

func checkTargets(op string, targets []int32, rows, V int) {
	if len(targets) < rows {
		panic(fmt.Sprintf("kernels.%s: len(targets)=%d < rows=%d", op, len(targets), rows))
	}
	for r, t := range targets[:rows] {
		if int(t) >= V {
			panic(fmt.Sprintf("kernels.%s: targets[%d]=%d out of vocabulary size %d", op, r, t, V))
		}
	}
}
