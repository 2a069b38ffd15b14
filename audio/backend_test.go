package audio

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewBackendKinds(t *testing.T) {
	ctx := testCtx(t, 5*time.Second)
	b, err := NewBackend(ctx, KindAuto, nil)
	require.NoError(t, err, "auto always yields a backend")
	if !MalgoAvailable() {
		assert.Equal(t, "virtual", b.Name())
	}
	require.NoError(t, b.Close())
	for _, k := range []Kind{KindNull, KindMalgo} {
		b, err := NewBackend(ctx, k, nil)
		if !MalgoAvailable() {
			assert.ErrorIs(t, err, ErrUnavailable, k)
			continue
		}
		if err == nil {
			require.NoError(t, b.Close())
		}
	}
	_, err = NewBackend(ctx, "pulse", nil)
	assert.ErrorIs(t, err, ErrUnavailable)
}
