package main

import (
	"strings"
	"testing"

	"github.com/gotrain/gotrain/data"
)

// TestParticipantOrder: each person answers, in a run, their own question
// and then the other distinct questions of their study and condition (at
// most per), every row with their persona; other cells' questions and rows
// without a scenario stay out of the run.
func TestParticipantOrder(t *testing.T) {
	row := func(persona, study string, cond int, stim string) data.Example {
		return data.Example{Input: "Demographics: " + persona + "\n\nScenario: " + stim, StudyID: study, ConditionNum: cond}
	}
	donors := []data.Example{
		row("x", "s1", 1, "V1 and then were asked: “q1”"),
		row("y", "s1", 1, "V1 and then were asked: “q2”"),
		row("z", "s1", 1, "V1 and then were asked: “q2”"), // the same question again
		row("w", "s1", 1, "V1 and then were asked: “q3”"),
		row("v", "s1", 2, "V2 and then were asked: “q4”"), // another condition
		{Input: "no scenario", StudyID: "s1", ConditionNum: 1},
	}
	people := []data.Example{row("P", "s1", 1, "V1 and then were asked: “q2”"), {Input: "no scenario"}}
	got := participantOrder(people, donors, 3)
	want := []string{
		"Demographics: P\n\nScenario: V1 and then were asked: “q2”",
		"Demographics: P\n\nScenario: V1 and then were asked: “q1”",
		"Demographics: P\n\nScenario: V1 and then were asked: “q3”",
		"no scenario",
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Input != want[i] {
			t.Errorf("row %d: %q, want %q", i, got[i].Input, want[i])
		}
	}
	if n := len(participantOrder(people[:1], donors, 1)); n != 1 {
		t.Errorf("per 1: %d rows", n)
	}
	for _, r := range got[:3] {
		if r.StudyID != "s1" || r.ConditionNum != 1 || !strings.HasPrefix(r.Input, "Demographics: P") {
			t.Errorf("row %+v lost the participant's study, condition or persona", r)
		}
	}
}
