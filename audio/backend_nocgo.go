//go:build !cgo

package audio

import (
	"context"
	"fmt"
	"log/slog"
)

const malgoAvailable = false

func newMalgoBackend(ctx context.Context, kind Kind, logger *slog.Logger) (Backend, error) {
	return nil, fmt.Errorf("%w: %s backend needs cgo (miniaudio)", ErrUnavailable, kind)
}
