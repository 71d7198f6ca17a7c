package data

import (
	"bytes"
	_ "embed"
)

// The bundled SocSci210 sample (see sample/README.md): all 2,780 dev rows
// in alpaca layout and 1,000 participant profiles, so demos and tests run
// without the shared data directory.
var (
	//go:embed sample/dev.jsonl.gz
	sampleRows []byte
	//go:embed sample/participants.json.gz
	samplePersonas []byte
)

// SampleRows returns the bundled SocSci210 dev rows (2,780 rows, 20
// studies). File is "sample/dev.jsonl.gz".
func SampleRows() ([]Example, error) {
	return ReadSFTFrom(bytes.NewReader(sampleRows), "sample/dev.jsonl.gz", ReadOptions{})
}

// SamplePersonas returns the bundled 1,000 participant profiles.
func SamplePersonas() ([]Persona, error) {
	return ReadPersonasFrom(bytes.NewReader(samplePersonas), "sample/participants.json.gz")
}
