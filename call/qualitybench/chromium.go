package main

import (
	"context"
	"errors"
)

// runChromium measures Chromium calling Chromium through the relay.
func runChromium(ctx context.Context, o options, c condition, speech []int16, seed uint64) (result, error) {
	return result{}, errors.New("chromium peer: not built yet")
}
