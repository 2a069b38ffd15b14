// Package media turns PCM into RTP and RTP back into PCM for one voice call.
//
// It holds the codecs (Opus through libopus when cgo is available, G.711
// μ-law in pure Go always), the send path ([Sender]: framing, mute, level and
// voice activity, encoding, RTP with timestamps that keep advancing across
// mute and DTX gaps), the receive path ([Receiver]: an adaptive jitter buffer
// with reordering, duplicate and late-packet handling, clock-drift
// compensation, and decoding with Opus in-band FEC, packet-loss concealment or
// silence), and the PCM sources and sinks a softphone plays around a call:
// call-progress tones ([Tone]), WAV prompts and recordings ([WAV] decodes a
// file for a pcm.Player, [WAVSink] writes one) and a [Mixer].
//
// The format everywhere is 48 kHz, mono, int16. Everything that produces
// audio is a pcm.Reader and everything that consumes it a pcm.Writer
// (package pcm, shared with package audio), so a device
// callback can be wired straight to a Sender (capture) and to a Receiver or a
// Mixer (playback). Neither path starts goroutines on the hot path: the
// device clock drives encoding in WritePCM and decoding in ReadPCM, and
// ReadPCM never blocks.
//
// The package builds with CGO_ENABLED=0; then only G.711 (PCMU) is available
// and [OpusAvailable] is false.
//
// # DTMF
//
// [RegisterCodecs] also registers RFC 4733 telephone-event (48000 Hz next to
// Opus, 8000 Hz next to PCMU, fmtp "0-15" as browsers offer it, so pion
// keeps it among the exact codec matches it negotiates). A [Track] learns the
// negotiated telephone-event payload type in Bind ([Negotiated].DTMF);
// [Sender.SendDTMF] queues digits that replace the audio frames while they
// play (audio is suppressed during an event and resumes after it, as in
// libwebrtc); the Receiver keeps telephone-event packets out of the jitter
// buffer and decoder, counts their sequence numbers as received (the audio
// sequence has gaps where they were: neither loss nor concealment) and
// reports each event once through [ReceiverConfig].OnDTMF. Details in
// dtmf.go.
//
// # Quality and capacity
//
// Almost all the CPU of a call is the codec (profile of BenchmarkCallCapacity:
// Opus encode ≈ 75 %, decode ≈ 20 %, everything else — framing, level, VAD,
// RTP, jitter buffer — under 5 %), and the Opus encoder's cost on speech is
// set by its complexity and mode. Quality is measured the way a listener
// hears it (mediatest.Quality, ViSQOL's MOS-LQO on synthesised speech):
// SNR, which the tests use to check that the right audio arrived, cannot
// rank a perceptual codec's settings. On speech, the score rises with the
// complexity up to 9 and not beyond (BenchmarkOpusComplexityQuality in
// package mediatest), so the default is OpusVoIP at complexity
// [DefaultOpusComplexity], fullband: speech mode with in-band FEC and DTX
// available (both need SILK), as browsers send it.
//
// A process that holds many calls can trade quality for calls per core:
// [CapacityEncoder] (complexity 1, wideband) encodes at a fraction of the
// cost. OpusAudio is CELT on speech below complexity 7 (hybrid above) and
// OpusLowDelay is always CELT: cheaper, but no in-band FEC (the receiver's
// loss recovery relies on it) and no DTX, and CELT degrades faster than
// SILK at low bitrates. OpusAudio turns to hybrid, and so to in-band FEC,
// once the far end reports more than 5 % loss (TestOpusAudioModeUnderLoss).
// In-band FEC, turned on by Sender.SetPacketLoss when the far end reports
// loss, costs extra encode time (it forces SILK with redundancy).
//
// BenchmarkCallCapacity measures one two-way call's media work per 20 ms
// and reports calls/core and calls/machine at 100 % CPU; BenchmarkLiveCalls
// (go test -run - -bench 'LiveCalls/calls=100' -benchtime 1x ./media/) runs
// that many real-time two-way calls with device-like 10 ms clocks and
// counts the late ticks. The whole call path under load is measured by
// call/loadtest. docs/PERFORMANCE.md has the figures and the commands.
package media
