package pulsetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestServerSinks(t *testing.T) {
	s := Start(t)
	sinks := s.Pactl("list", "short", "sinks")
	for _, name := range Sinks {
		assert.Contains(t, sinks, name)
	}
	assert.Contains(t, s.Pactl("list", "short", "sources"), Mic)
	assert.Contains(t, s.Pactl("info"), "Default Sink: spk\n")

	mod := s.AddSink("hot")
	assert.Contains(t, s.Pactl("list", "short", "sinks"), "hot")
	s.RemoveSink("hot", mod)
	assert.NotContains(t, s.Pactl("list", "short", "sinks"), "hot")

	s.Kill()
	_, err := s.run(t.Context(), "info")
	require.Error(t, err, "the server answers after Kill")
	s.Restart()
	assert.Contains(t, s.Pactl("info"), "Default Sink: spk\n")
}
