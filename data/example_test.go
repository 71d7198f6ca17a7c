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
