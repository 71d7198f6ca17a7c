package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/kernels"
)

// span is the accepted range of a numeric flag; open ends exclude the bound.
type span struct {
	lo, hi         float64
	loOpen, hiOpen bool
	why            string // what the range means, for the error
}

var unit = span{lo: 0, hi: 1, why: "between 0 and 1"}

// flagSpans bounds the numeric flags of every command by name (one name has
// one meaning across commands; "command name" keys a command's own). Every other numeric flag must be finite and
// not negative: parseFlags checks that of all of them.
var flagSpans = map[string]span{
	"max-len":           {lo: 1, hi: 1 << 24, why: "between 1 and 16777216"},
	"max-line-bytes":    {lo: 64, hi: 1 << 30, why: "between 64 and 1073741824"},
	"lr":                {lo: 0, hi: 10, loOpen: true, why: "in (0, 10]"},
	"lora-r":            {lo: 1, hi: 4096, why: "between 1 and 4096"},
	"lora-alpha":        {lo: 0, hi: 1e6, loOpen: true, why: "in (0, 1e6]"},
	"lora-dropout":      {lo: 0, hi: 1, hiOpen: true, why: "in [0, 1)"},
	"weight-decay":      {lo: 0, hi: 10, why: "in [0, 10]"},
	"warmup-ratio":      unit,
	"batch-size":        {lo: 1, hi: 1 << 20, why: "between 1 and 1048576"},
	"grad-accum":        {lo: 1, hi: 1 << 20, why: "between 1 and 1048576"},
	"epochs":            {lo: 1, hi: 1 << 20, why: "between 1 and 1048576"},
	"max-steps":         {lo: 0, hi: 1 << 40, why: "between 0 and 2^40"},
	"max-grad-norm":     {lo: 0, hi: 1e12, why: "in [0, 1e12]"},
	"beta":              {lo: 0, hi: 1e6, loOpen: true, why: "in (0, 1e6]"},
	"label-smoothing":   {lo: 0, hi: 0.5, hiOpen: true, why: "in [0, 0.5)"},
	"pairs-per-example": {lo: 1, hi: 1000, why: "between 1 and 1000"},
	"temperature":       {lo: 0, hi: 100, why: "in [0, 100]"},
	"top-p":             {lo: 0, hi: 1, loOpen: true, why: "in (0, 1]"},
	"max-new-tokens":    {lo: 1, hi: 1 << 24, why: "between 1 and 16777216"},
	"samples":           {lo: 0, hi: 1 << 16, why: "between 0 and 65536"},
	"bootstrap":         {lo: 0, hi: 1 << 20, why: "between 0 and 1048576"},
	"max-options":       {lo: 2, hi: 1 << 20, why: "between 2 and 1048576"},
	"eval-frac":         {lo: 0, hi: 1, loOpen: true, hiOpen: true, why: "in (0, 1)"},
	"threads":           {lo: 0, hi: kernels.MaxThreads, why: fmt.Sprintf("between 0 and %d", kernels.MaxThreads)},
	"simulate n":        {lo: 0, hi: 1 << 24, why: "between 0 and 16777216"},
	"bench gemm m":      benchSize,
	"bench gemm n":      benchSize,
	"bench gemm k":      benchSize,
	"mib":               {lo: 1, hi: 1 << 16, why: "between 1 and 65536"},
	"tokens":            benchSize,
	"batch":             {lo: 1, hi: 1024, why: "between 1 and 1024"},
	"steps":             benchSize,
	"reps":              {lo: 1, hi: 1000, why: "between 1 and 1000"},
	"rows":              {lo: 1, hi: 1 << 20, why: "between 1 and 1048576"},
	"time":              {lo: 0, hi: math.MaxInt64, loOpen: true, why: "positive"},
	"ranks":             {lo: 2, hi: 64, why: "between 2 and 64"},
	"runs":              {lo: 1, hi: 1 << 20, why: "between 1 and 1048576"},
}

// benchSize bounds the benchmarks' matrix sizes (a 32768² float32 matrix is 4 GiB).
var benchSize = span{lo: 1, hi: 1 << 15, why: "between 1 and 32768"}

// addMaxLineFlag adds --max-line-bytes, the limit of one input record.
func addMaxLineFlag(fs *flag.FlagSet) *int {
	return fs.Int("max-line-bytes", data.DefaultMaxLineBytes, "longest input line (JSONL record) in bytes; longer ones are bad lines, refused before parsing")
}

// parseFlags parses args and checks every numeric flag: finite, not
// negative, and within its flagSpans range, so that --lr NaN or
// --max-len 0 is a flag error rather than a run that trains on nothing.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return
		}
		var v float64
		switch x := g.Get().(type) {
		case int:
			v = float64(x)
		case int64:
			v = float64(x)
		case uint, uint64:
			return // a seed: every value is one
		case float64:
			v = x
		case time.Duration:
			v = float64(x)
		default:
			return
		}
		s, bounded := flagSpans[strings.TrimPrefix(fs.Name(), "gotrain ")+" "+f.Name]
		if !bounded {
			s, bounded = flagSpans[f.Name]
		}
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			err = fmt.Errorf("--%s %s: want a finite number", f.Name, f.Value)
		case !bounded && v < 0:
			err = fmt.Errorf("--%s %s: must not be negative", f.Name, f.Value)
		case bounded && (v < s.lo || v > s.hi || s.loOpen && v == s.lo || s.hiOpen && v == s.hi):
			err = fmt.Errorf("--%s %s: must be %s", f.Name, f.Value, s.why)
		}
	})
	return err
}

// optionalFloat is a flag of a number ≥ 0 whose absence is told apart from
// any value (the default then comes from elsewhere, e.g. config.json).
type optionalFloat struct {
	v   float64
	set bool
}

func (o *optionalFloat) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatFloat(o.v, 'g', -1, 64)
}

func (o *optionalFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v >= 0 && v <= math.MaxFloat32) {
		return fmt.Errorf("want a finite number ≥ 0")
	}
	o.v, o.set = v, true
	return nil
}
