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
// # Capacity
//
// Almost all the CPU of a call is the codec (profile of BenchmarkCallCapacity:
// Opus encode ≈ 75 %, decode ≈ 20 %, everything else — framing, level, VAD,
// RTP, jitter buffer — under 5 %), and the Opus encoder's cost on speech is
// set by its complexity and mode. On speech, Opus in VoIP mode codes SILK
// (wideband) or hybrid (SILK + CELT above 8 kHz, at 32 kbit/s fullband); its
// cost grows steeply with complexity while the quality gain is small:
//
//	BenchmarkOpusSpeech (20 ms frames, 32 kbit/s, speech-like signal; 2-core machine, best of 3, other work running)
//	setting                 encode µs/frame   SNR dB   kbit/s
//	voip  fullband  cx=1          76       14.7     25.9
//	voip  fullband  cx=2         105       15.4     26.3
//	voip  fullband  cx=3 default 112       15.1     25.4
//	voip  fullband  cx=5         142       15.2     26.5
//	voip  fullband  cx=7         205       15.5     26.2
//	voip  fullband  cx=9         262       15.6     26.4
//	voip  fullband  cx=10        264       15.6     26.4
//	voip  wideband  cx=1          76       15.4     18.5
//	voip  wideband  cx=3         107       15.6     17.7
//	voip  wideband  cx=9         246       15.8     19.2
//	voip  fullband  cx=3 +FEC    151       13.9     27.2
//	voip  fullband  cx=9 +FEC    480       15.2     26.7
//	audio fullband  cx=3 (CELT)   45       16.5     32.5
//	audio fullband  cx=9 (hyb.)  273       20.0     27.1
//	lowdelay        cx=3 (CELT)   28       16.3     32.5
//	lowdelay        cx=9 (CELT)   70       19.9     32.5
//
// One two-way call (BenchmarkCallCapacity, both ends, per 20 ms): 292 µs at
// the default (137 calls per 2-core machine at 100 % CPU), 613 µs at
// complexity 9 (65), 223 µs at complexity 1 (179), 174 µs with OpusLowDelay
// at complexity 9 (230), 62 µs with PCMU. A tonal test signal at 10 ms
// frames loses about 2 dB SNR at complexity 3 against 9 (4 dB at 1); speech
// loses a fraction of a dB. For about 100 calls per 2 cores with headroom
// for the network stack, use Complexity 1, or OpusLowDelay where FEC is not
// needed.
//
// (SNR understates SILK, which is not waveform-matching; it is used here to
// compare settings of the same mode.) The default is therefore OpusVoIP at
// complexity [DefaultOpusComplexity]: speech mode with in-band FEC and DTX
// available (both need SILK), fullband, at about half the encode cost of
// complexity 9 for a fraction of a dB. OpusAudio is CELT on speech below
// complexity 7 (hybrid above) and OpusLowDelay is always CELT: cheaper and
// higher SNR at 32 kbit/s, but no in-band FEC (the receiver's loss recovery
// relies on it) and no DTX, and CELT degrades faster than SILK at low
// bitrates. OpusAudio turns to hybrid, and so to in-band FEC, once the far
// end reports more than 5 % loss (TestOpusAudioModeUnderLoss): CELT's cost
// on a clean link, FEC on a bad one, but no FEC at 1–5 % loss.
// OpusWideband caps the bandwidth at 8 kHz (pure SILK): cheaper and
// fewer bits, at the price of the 8–20 kHz band. In-band FEC, turned on by
// Sender.SetPacketLoss when the far end reports loss, costs extra encode
// time (it forces SILK with redundancy).
//
// BenchmarkCallCapacity measures one two-way call's media work per 20 ms
// and reports calls/core and calls/machine at 100 % CPU; TestConcurrentCalls
// (opt-in: DIALTONE_CALLS=100 go test -run ConcurrentCalls ./media/) runs N
// real-time two-way calls with device-like 10 ms clocks and fails on any
// late tick. See the README for the figures.
package media
