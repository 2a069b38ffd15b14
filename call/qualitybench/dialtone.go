package main

import (
	"context"
	"errors"
)

// runDialtone measures two dialtone phones through the relay.
func runDialtone(ctx context.Context, o options, c condition, speech []int16, seed uint64) (result, error) {
	return result{}, errors.New("dialtone peer: not built yet")
}
