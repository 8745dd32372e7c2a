//go:build !race

package main

// raceEnabled reports whether the test binary runs with the race detector,
// so that the provider it builds does too (and reuses the race-compiled
// cgo SQLite from the build cache).
const raceEnabled = false
