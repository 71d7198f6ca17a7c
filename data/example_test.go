package data_test

import (
	"fmt"

	"github.com/gotrain/gotrain/data"
)

func ExampleParseOptions() {
	o, ok := data.ParseOptions("Only return an integer from 1 to 4, where 1 means Very Unlikely and 4 means Very Likely.")
	fmt.Println(ok, o.Values, o.Labels[0], "/", o.Labels[3])
	o, _ = data.ParseOptions("Only return 1 for 'Yes' or 2 for 'No', nothing else.")
	fmt.Printf("%v %q\n", o.Values, o.Labels)
	// Output:
	// true [1 2 3 4] Very Unlikely / Very Likely
	// [1 2] ["Yes" "No"]
}

func ExampleBuildPrompt() {
	p := data.Persona{Age: 76, Sex: "Male", Income: "50-74K", Ideology: "Moderate"}
	fmt.Println(data.BuildPrompt(p.Render(), "You read “X” and then were asked: “Q?”"))
	// Output:
	// Demographics: Age: 76; Gender: Male; Income: 50-74K; Ideology: Moderate
	//
	// Scenario: You read “X” and then were asked: “Q?”
}

func ExampleQuestion() {
	in := "Demographics: Age: 30\n\nScenario: You read “X.” and then were asked: “How fair is it?” Only return an integer from 1 to 4, nothing else."
	fmt.Println(data.Question(in))
	// Output: How fair is it?
}

func ExampleW1() {
	// All mass at 0 versus all mass at 1 on a three-point scale.
	fmt.Println(data.W1([]float64{1, 0, 0}, []float64{0, 0, 1}, []float64{0, 0.5, 1}))
	// Output: 1
}

// Reading the paper's metrics for predictions: W1 per cell, per study and
// macro, with the uniform and training-prior baselines beside the model.
func ExampleEvaluate() {
	row := func(cond int, answer float64) data.Example {
		return data.Example{StudyID: "abcde", ConditionNum: cond, Output: data.FormatResponse(answer), Response: answer, HasResponse: true,
			Input: "Demographics: Age: 40\n\nScenario: You read a text and then were asked: “Agree?” Only return an integer from 1 to 3."}
	}
	train := []data.Example{row(1, 3), row(1, 3), row(2, 1)}
	rows := []data.Example{row(1, 3), row(1, 2), row(2, 1)}
	probs := [][]float64{{0.1, 0.2, 0.7}, {0.1, 0.6, 0.3}, {0.8, 0.1, 0.1}}
	rep := data.Evaluate(data.Predictions(rows, probs), data.NewPrior(train), "")
	fmt.Printf("cells %d, macro W1: model %.3f, uniform %.3f, prior %.3f\n", len(rep.Cells), rep.MacroW1.Model, rep.MacroW1.Uniform, rep.MacroW1.Prior)
	fmt.Printf("accuracy: model %.3f, uniform %.3f\n", rep.Individual.Accuracy.Model, rep.Individual.Accuracy.Uniform)
	// Output:
	// cells 2, macro W1: model 0.100, uniform 0.375, prior 0.458
	// accuracy: model 1.000, uniform 0.500
}
