// Package media turns PCM into RTP and RTP back into PCM for one voice call.
//
// It holds the codecs (Opus through libopus when cgo is available, G.711
// μ-law in pure Go always), the send path ([Sender]: framing, mute, level and
// voice activity, encoding, RTP with timestamps that keep advancing across
// mute and DTX gaps), the receive path ([Receiver]: an adaptive jitter buffer
// with reordering, duplicate and late-packet handling, clock-drift
// compensation, and decoding with Opus in-band FEC, packet-loss concealment or
// silence), and the PCM sources and sinks a softphone plays around a call:
// call-progress tones ([Tone]), WAV prompts and recordings ([WAVSource],
// [WAVSink]) and a [Mixer].
//
// The format everywhere is 48 kHz, mono, int16. Everything that produces
// audio implements ReadPCM(p []int16) (int, error) and everything that
// consumes it implements WritePCM(p []int16) (int, error), so a device
// callback can be wired straight to a Sender (capture) and to a Receiver or a
// Mixer (playback). Neither path starts goroutines on the hot path: the
// device clock drives encoding in WritePCM and decoding in ReadPCM, and
// ReadPCM never blocks.
//
// The package builds with CGO_ENABLED=0; then only G.711 (PCMU) is available
// and [OpusAvailable] is false.
package media
