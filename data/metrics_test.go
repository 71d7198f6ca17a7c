package data

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestW1(t *testing.T) {
	x3 := []float64{0, 0.5, 1}
	tests := []struct {
		p, q, x []float64
		want    float64
	}{
		{[]float64{1, 0, 0}, []float64{0, 0, 1}, x3, 1},
		{[]float64{0.5, 0.5, 0}, []float64{0, 0.5, 0.5}, x3, 0.5},
		{[]float64{0.2, 0.3, 0.5}, []float64{0.2, 0.3, 0.5}, x3, 0},
		{[]float64{1, 0}, []float64{0, 1}, []float64{0, 1}, 1},
		{[]float64{1, 0, 0, 0}, []float64{0, 1, 0, 0}, []float64{0, 1.0 / 3, 2.0 / 3, 1}, 1.0 / 3},
		{[]float64{1}, []float64{1}, []float64{0}, 0},
	}
	for _, tt := range tests {
		if got := W1(tt.p, tt.q, tt.x); !near(got, tt.want) {
			t.Errorf("W1(%v, %v) = %v, want %v", tt.p, tt.q, got, tt.want)
		}
		if got := W1(tt.q, tt.p, tt.x); !near(got, tt.want) {
			t.Errorf("W1 not symmetric on %v %v", tt.p, tt.q)
		}
	}
	// Options listed out of value order are sorted before the CDFs.
	o, _ := NewOptions([]float64{3, 1, 2}, nil)
	if got := CellW1(o, []float64{1, 0, 0}, []float64{0, 1, 0}); !near(got, 1) {
		t.Errorf("CellW1 unordered = %v", got)
	}
}

// TestW1Values: W1 over values, divided by the scale's width, equals the
// option W1 on the same distributions, for random ones; and it does not
// depend on the order the values come in.
func TestW1Values(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	o := rangeOf(1, 5)
	for k := 0; k < 100; k++ {
		p, q := make([]float64, 5), make([]float64, 5)
		var a, b []ValueProb
		for i := range p {
			p[i], q[i] = rng.Float64(), rng.Float64()
		}
		p, _ = normalise(p)
		q, _ = normalise(q)
		for _, i := range rng.Perm(5) {
			a = append(a, ValueProb{o.Values[i], p[i]})
			b = append(b, ValueProb{o.Values[i], q[i]})
		}
		if got, want := W1Values(a, b)/4, CellW1(o, p, q); math.Abs(got-want) > 1e-12 {
			t.Fatalf("W1Values/4 = %v, CellW1 = %v", got, want)
		}
	}
	if got := W1Values([]ValueProb{{0, 1}}, []ValueProb{{-3, 0.5}, {5, 0.5}}); got != 4 {
		t.Errorf("W1Values = %v, want 4", got)
	}
}

func TestRowMetrics(t *testing.T) {
	o5 := rangeOf(1, 5)
	o3 := rangeOf(1, 3)
	o2 := rangeOf(1, 2)
	tests := []struct {
		name  string
		o     Options
		probs []float64
		truth float64
		acc   float64
		ll    float64
		rps   float64
	}{
		{"argmax-2-truth-4", o5, []float64{0.1, 0.5, 0.2, 0.1, 0.1}, 4, 0.5, math.Log(0.1),
			(0.1*0.1 + 0.6*0.6 + 0.8*0.8 + 0.1*0.1) / 4},
		{"mid", o3, []float64{0.2, 0.5, 0.3}, 2, 1, math.Log(0.5), (0.04 + 0.09) / 2},
		{"perfect", o3, []float64{0, 1, 0}, 2, 1, 0, 0},
		{"worst", o3, []float64{1, 0, 0}, 3, 0, math.Log(LogFloor), 1},
		{"tie-first", o2, []float64{0.5, 0.5}, 2, 0, math.Log(0.5), 0.25},
	}
	for _, tt := range tests {
		if got := Accuracy(tt.o, tt.probs, tt.truth); !near(got, tt.acc) {
			t.Errorf("%s: accuracy %v, want %v", tt.name, got, tt.acc)
		}
		if got := LogLik(tt.o, tt.probs, tt.truth); !near(got, tt.ll) {
			t.Errorf("%s: loglik %v, want %v", tt.name, got, tt.ll)
		}
		if got := RPS(tt.o, tt.probs, tt.truth); !near(got, tt.rps) {
			t.Errorf("%s: rps %v, want %v", tt.name, got, tt.rps)
		}
	}
	if !math.IsNaN(LogLik(o3, []float64{1, 0, 0}, 9)) || !math.IsNaN(RPS(o3, []float64{1, 0}, 1)) || !math.IsNaN(Accuracy(Options{}, nil, 1)) {
		t.Error("invalid input not NaN")
	}
	if got := Mean(o3, []float64{0.2, 0.5, 0.3}); !near(got, 2.1) {
		t.Errorf("mean %v", got)
	}
}

func evalRow(study string, cond int, q, gender string, truth float64, probs []float64) Prediction {
	e := row(study, cond, q, "Gender: "+gender, FormatResponse(truth))
	e.Input = BuildPrompt("Gender: "+gender, `You were asked: "`+q+`" Only return an integer from 1 to 3.`)
	o, _ := e.Options()
	return Prediction{Example: e, Options: o, Probs: probs, Truth: truth}
}

// TestEvaluate checks Evaluate against numbers worked out by hand (see the
// comments): two studies, three cells, four scored rows, three skipped.
func TestEvaluate(t *testing.T) {
	preds := []Prediction{
		evalRow("A", 0, "Q1?", "Male", 1, []float64{1, 0, 0}),
		evalRow("A", 0, "Q1?", "Female", 3, []float64{0, 0, 2}), // unnormalised on purpose
		evalRow("A", 1, "Q1?", "Male", 2, []float64{0, 1, 0}),
		evalRow("B", 0, "Q2?", "Female", 1, []float64{0, 0, 1}),
		evalRow("B", 0, "Q2?", "Female", 7, []float64{0, 0, 1}),                    // truth not an option
		evalRow("B", 0, "Q2?", "Female", 1, []float64{0.5, 0.5}),                   // wrong length
		{Example: Example{StudyID: "C", TaskNum: -1, HasResponse: true}, Truth: 1}, // no options
	}
	train := []Example{
		row("A", 5, "Q1?", "Age: 1", "Response: 1"),
		row("A", 6, "Q1?", "Age: 1", "Response: 1"),
		row("B", 0, "Q3?", "Age: 1", "Response: 3"),
	}
	rep := Evaluate(preds, NewPrior(train), "Gender")
	if rep.Rows != 4 || rep.OptionRows != 4 || rep.Skipped[SkipOutside] != 1 || rep.Skipped[SkipProbsLength] != 1 || rep.Skipped[SkipNoOptions] != 1 || rep.Coverage["options"] != 7 {
		t.Fatalf("rows %d skipped %v coverage %v", rep.Rows, rep.Skipped, rep.Coverage)
	}
	want := []OutOfOptions{{Study: "B", Question: "Q2?", Form: "range", Format: "Only return an integer from 1 to 3.", Options: "1..3", Rows: 2, Outside: 1, Truths: []float64{7}, Where: []string{":0"}}}
	if !reflect.DeepEqual(rep.OutOfOptions, want) || rep.Studies[1].OutOfOptions != 1 {
		t.Errorf("out of options %+v", rep.OutOfOptions)
	}
	if len(rep.Cells) != 3 || len(rep.Studies) != 2 {
		t.Fatalf("%d cells, %d studies", len(rep.Cells), len(rep.Studies))
	}
	// Cell A/0/Q1: human [.5 0 .5] = model. Uniform: CDF [1/3 2/3] vs
	// [.5 .5] -> (1/6 + 1/6)·0.5 = 1/6. Prior [1 0 0]: CDF [1 1] vs [.5 .5]
	// -> 0.5.
	// Cell A/1/Q1: human [0 1 0] = model. Uniform (1/3 + 1/3)·0.5 = 1/3.
	// Prior [1 0 0]: (1 + 0)·0.5 = 0.5.
	// Cell B/0/Q2: human [1 0 0], model [0 0 1] -> 1. Uniform (2/3 + 1/3)·0.5
	// = 0.5. Prior (Q2 unseen, study B answered 3) [0 0 1] -> 1.
	cw := []Compare{{0, 1.0 / 6, 0.5}, {0, 1.0 / 3, 0.5}, {1, 0.5, 1}}
	for i, c := range rep.Cells {
		if !nearC(c.W1, cw[i]) {
			t.Errorf("cell %v: W1 %+v, want %+v", c.Key, c.W1, cw[i])
		}
	}
	if !nearC(rep.Studies[0].W1, Compare{0, 0.25, 0.5}) || !nearC(rep.Studies[1].W1, Compare{1, 0.5, 1}) {
		t.Errorf("study W1 %+v %+v", rep.Studies[0].W1, rep.Studies[1].W1)
	}
	if !nearC(rep.MacroW1, Compare{0.5, 0.375, 0.75}) || rep.MacroW1Options != rep.MacroW1 || rep.MacroW1Numeric != (Compare{}) {
		t.Errorf("macro W1 %+v, options %+v, numeric %+v", rep.MacroW1, rep.MacroW1Options, rep.MacroW1Numeric)
	}
	// Accuracy per row: model 1 1 1 0; uniform (ŷ = 1) 1 0 .5 1; prior
	// (ŷ = 1, 1, 1, 3) 1 0 .5 0.
	if !nearC(rep.Individual.Accuracy, Compare{0.75, 0.625, 0.375}) {
		t.Errorf("accuracy %+v", rep.Individual.Accuracy)
	}
	// Log-likelihood: model log 1 (x3) and log(LogFloor); uniform log(1/3).
	// Prior: [1 0 0] for Q1 gives log 1, floor, floor; [0 0 1] for Q2 floor.
	wantLL := Compare{math.Log(LogFloor) / 4, math.Log(1.0 / 3), 3 * math.Log(LogFloor) / 4}
	if !nearC(rep.Individual.LogLik, wantLL) {
		t.Errorf("loglik %+v, want %+v", rep.Individual.LogLik, wantLL)
	}
	// DPD over Gender. Model: Male rows |E-y| = 0, 0 -> 0; Female 0 and
	// |3-1|/2 = 1 -> .5; DPD .5. Uniform (E = 2): Male .5, 0 -> .25;
	// Female .5, .5 -> .5; DPD .25. Prior (E = 1, 1, 1, 3): Male 0, .5 ->
	// .25; Female 1, 1 -> 1; DPD .75.
	if !nearC(rep.DPD, Compare{0.5, 0.25, 0.75}) || len(rep.Groups) != 2 || rep.Groups[0].Value != "Female" || rep.Groups[0].N != 2 {
		t.Errorf("DPD %+v groups %+v", rep.DPD, rep.Groups)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("report not JSON-serialisable: %v", err)
	}
}

func nearC(a, b Compare) bool {
	return near(a.Model, b.Model) && near(a.Uniform, b.Uniform) && near(a.Prior, b.Prior)
}

// TestEvaluateBadDistributions: probabilities that overflow to +Inf, are
// negative or NaN, or numeric values that are not finite, are not scored.
func TestEvaluateBadDistributions(t *testing.T) {
	preds := []Prediction{
		evalRow("A", 0, "Q1?", "Male", 1, []float64{1e308, 1e308, 1e308}),
		evalRow("A", 0, "Q1?", "Male", 1, []float64{-1, 1, 1}),
		evalRow("A", 0, "Q1?", "Male", 1, []float64{math.NaN(), 1, 1}),
		evalRow("A", 0, "Q1?", "Male", 1, []float64{0, 0, 0}),
	}
	for _, num := range [][]ValueProb{{{math.Inf(1), 1}}, {{1, -1}, {2, 2}}, {{1, math.Inf(1)}}, nil} {
		p := evalRow("A", 1, "Q1?", "Male", 1, nil)
		p.Method, p.Numeric = "numeric", num
		preds = append(preds, p)
	}
	rep := Evaluate(preds, NewPrior(nil), "")
	if rep.Rows != 0 || rep.Skipped[SkipNotDist] != len(preds) {
		t.Errorf("rows %d skipped %v", rep.Rows, rep.Skipped)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
}

func TestEvaluateEmpty(t *testing.T) {
	rep := Evaluate(nil, Prior{}, "sex")
	if rep.Rows != 0 || len(rep.Cells) != 0 {
		t.Errorf("%+v", rep)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
}

func TestPriorFallback(t *testing.T) {
	o := rangeOf(1, 3)
	p := NewPrior([]Example{row("A", 0, "Q?", "Age: 1", "Response: 2"), row("A", 0, "Q?", "Age: 1", "Response: 9")})
	p.Alpha = 1
	e := row("A", 3, "Q?", "Age: 2", "Response: 1")
	if d := p.Dist(&e, o); !near(d[0], 0.25) || !near(d[1], 0.5) {
		t.Errorf("question prior %v", d)
	}
	e = row("Z", 0, "New?", "Age: 2", "Response: 1")
	if d := p.Dist(&e, o); !near(d[0], 1.0/3) {
		t.Errorf("uniform fallback %v", d)
	}
	if d := (Prior{}).Dist(&e, o); !near(d[2], 1.0/3) {
		t.Errorf("zero prior %v", d)
	}
}

// TestEvaluateSample runs the baselines on the bundled sample, with the
// model replaced by the prior of a by-participant training split: an end
// to end check that every enumerated row is scored.
func TestEvaluateSample(t *testing.T) {
	rows := loadSample(t)
	train, eval := Split(rows, ByRow, 0.3, 1)
	prior := NewPrior(train)
	preds := Predictions(eval, nil)
	for i := range preds {
		o := &preds[i].Options
		if len(o.Values) > 0 {
			preds[i].Probs = Uniform(len(o.Values))
			continue
		}
		// open numeric rows: a numeric prediction over two values
		preds[i].Method = "numeric"
		preds[i].Numeric = []ValueProb{{0, 0.5}, {100, 0.5}}
	}
	rep := Evaluate(preds, prior, "Gender")
	if rep.Rows != len(eval) || len(rep.Skipped) != 0 || rep.NumericRows == 0 || rep.Coverage["numeric"] != rep.NumericRows {
		t.Errorf("scored %d (%d numeric), skipped %v of %d", rep.Rows, rep.NumericRows, rep.Skipped, len(eval))
	}
	if !nearC(Compare{rep.MacroW1Options.Model, 0, 0}, Compare{rep.MacroW1Options.Uniform, 0, 0}) {
		t.Errorf("uniform model differs from the uniform baseline: %+v", rep.MacroW1Options)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
	t.Logf("numeric rows %d; macro W1 model %.4f (options %.4f, numeric %.4f)", rep.NumericRows, rep.MacroW1.Model, rep.MacroW1Options.Model, rep.MacroW1Numeric.Model)
	t.Logf("eval %d rows, %d cells, %d studies; macro W1 uniform %.4f prior %.4f; accuracy uniform %.4f prior %.4f; RPS uniform %.4f prior %.4f; DPD(Gender) uniform %.4f prior %.4f",
		rep.Rows, len(rep.Cells), len(rep.Studies), rep.MacroW1.Uniform, rep.MacroW1.Prior,
		rep.Individual.Accuracy.Uniform, rep.Individual.Accuracy.Prior, rep.Individual.RPS.Uniform, rep.Individual.RPS.Prior, rep.DPD.Uniform, rep.DPD.Prior)
}

func TestCheckProbs(t *testing.T) {
	for _, bad := range [][]float64{{1e308, 1e308}, {math.NaN(), 1}, {math.Inf(1)}, {-0.1, 1.1}, {0, 0}, {}} {
		if CheckProbs(bad) == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	for _, good := range [][]float64{{0.2, 0.8}, {1e308}, {3, 1}, {0, 5e-324}} {
		if err := CheckProbs(good); err != nil {
			t.Errorf("%v: %v", good, err)
		}
	}
}

// rangeOf is the options lo..hi.
func rangeOf(lo, hi int) Options {
	o, _ := stepRange(decimal{val: float64(lo), mant: int64(lo), exact: true}, decimal{val: float64(hi), mant: int64(hi), exact: true}, nil, false, MaxOptionValues, "range")
	return o
}

// TestNumericRangeWithTrain: a numeric cell's W1 is divided by the range of
// the study's answers to the question, the training rows' included.
func TestNumericRangeWithTrain(t *testing.T) {
	ask := `You were asked: "How much would you give?" Only return an integer representing dollars.`
	e := row("D", 0, "x", "Age: 30", "Response: 10")
	e.Input = BuildPrompt("Age: 30", ask)
	o, _ := e.Options()
	pred := []Prediction{{Example: e, Method: "numeric", Options: o, Numeric: []ValueProb{{20, 1}}, Truth: 10}}
	if rep := Evaluate(pred, NewPrior(nil), ""); len(rep.Cells) != 1 {
		t.Fatalf("cells %d, skipped %v", len(rep.Cells), rep.Skipped)
	}
	// alone: one answer, so the normaliser is its magnitude: |20 − 10| / 10
	if w := Evaluate(pred, NewPrior(nil), "").Cells[0].W1.Model; math.Abs(w-1) > 1e-12 {
		t.Errorf("W1 without training rows %v, want 1", w)
	}
	var train []Example
	for _, r := range []string{"Response: 0", "Response: 50"} {
		tr := row("D", 1, "x", "Age: 40", r)
		tr.Input = BuildPrompt("Age: 40", ask)
		train = append(train, tr)
	}
	// the training answers span 0..50: 10 / 50
	if w := Evaluate(pred, NewPrior(train), "").Cells[0].W1.Model; math.Abs(w-0.2) > 1e-12 {
		t.Errorf("W1 with training rows %v, want 0.2", w)
	}
}
