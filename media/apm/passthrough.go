//go:build !cgo

package apm

const engineAvailable = false

// newEngine has no library to offer without cgo: every Processor passes
// audio through.
func newEngine() (engine, error) { return nil, nil }
