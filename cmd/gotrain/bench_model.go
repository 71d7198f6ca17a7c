package main

import "fmt"

func runBenchModel(name string, args []string) error { return fmt.Errorf("unknown benchmark %q", name) }
