package call

import (
	"log/slog"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/apm"
	"github.com/pion/webrtc/v4"
)

// Default timers and intervals, applied by NewPhone for zero Config fields.
const (
	DefaultRingTimeout       = 40 * time.Second
	DefaultConnectTimeout    = 15 * time.Second
	DefaultRelayTimeout      = 10 * time.Second
	DefaultSignalingGrace    = 10 * time.Second
	DefaultStatsInterval     = time.Second
	DefaultEndToneDuration   = 3 * time.Second
	DefaultSendTimeout       = 10 * time.Second
	DefaultDisconnectedGrace = time.Second
)

// Config configures a Phone and every call it makes. The zero value works:
// default audio device (or the virtual one on a machine without a sound
// card), Opus at 32 kbit/s in 20 ms frames, the server's relay config, and
// the default timers below.
type Config struct {
	// DisplayName is sent with our invites for the callee's UI.
	DisplayName string

	// ICEServers, when set, are used for every call as they are. When nil
	// the phone uses the relay config (STUN/TURN with time-limited
	// credentials) the server sent with `ready`, refreshing it with a
	// `relay` request when it has expired; if the server does not answer
	// within RelayTimeout the call goes on with host candidates and logs it.
	ICEServers []webrtc.ICEServer

	// RelayOnly sends all media through the TURN relay (ICE transport
	// policy "relay"): the peer never learns this phone's addresses. It
	// needs TURN in ICEServers or in the server's relay config. A relay
	// pair is accepted as soon as it works (pion's relay acceptance wait,
	// SettingEngine.SetRelayAcceptanceMinWait, is set to zero): there is no
	// direct path to wait for.
	RelayOnly bool

	// SettingEngine, when set, configures every PeerConnection (network
	// types, interface filter, vnet, ICE timeouts). Tests and calltest use
	// it to keep calls on loopback or a simulated network.
	SettingEngine *webrtc.SettingEngine

	// Audio selects the devices. Zero value: the default devices, falling
	// back to the null/virtual device when there is no sound card.
	Audio AudioConfig

	// Codec tunes the encoder.
	Codec CodecConfig

	// Processing switches the parts of the microphone's processing (echo
	// cancellation against what the speaker plays, noise suppression, gain
	// control, high-pass filter) for every call. nil: apm.Default() (all
	// but gain control) with a sound card, all off with the virtual or null
	// device (whose audio comes from a file or a test, not a room). Call.SetProcessing changes it
	// during a call. Built without cgo the processing is a pass-through.
	Processing *apm.Config

	// ToneStyle picks the call-progress tones (ringback, busy, error):
	// media.StyleITU (default, 425 Hz) or media.StyleUS.
	ToneStyle media.ToneStyle

	// RingTimeout bounds the wait for an answer once the invite is out
	// (default 40 s); on expiry the caller sends `cancel` and the call ends
	// `no-answer` on both sides.
	RingTimeout time.Duration
	// ConnectTimeout bounds accept → media connected (default 15 s); on
	// expiry the call ends `connect-timeout`.
	ConnectTimeout time.Duration
	// RelayTimeout bounds the wait for a `relay-config` answer (default 10 s).
	RelayTimeout time.Duration
	// SignalingGrace is how long a call that is still being set up waits
	// for a lost signaling connection to come back before it ends
	// `signaling-lost` (default 10 s). A connected call does not need
	// signaling and keeps going.
	SignalingGrace time.Duration
	// DisconnectedGrace is how long ICE may stay disconnected before an ICE
	// restart (default 1 s).
	DisconnectedGrace time.Duration
	// StatsInterval is the period of EventStats samples (default 1 s).
	StatsInterval time.Duration
	// EndToneDuration is how long the busy or error tone plays after a
	// failed call before the audio device is released (default 3 s;
	// negative: no end tone).
	EndToneDuration time.Duration
	// SendTimeout bounds one signaling write (default 10 s).
	SendTimeout time.Duration
	// DTMFDuration is the length of each digit sent by SendDTMF (default
	// 100 ms).
	DTMFDuration time.Duration

	// Logger receives the phone's logs (default: discard).
	Logger *slog.Logger
}

// AudioConfig selects the audio devices of every call.
type AudioConfig struct {
	// Backend, when set, is the sound system to use (tests pass a virtual
	// backend with WAV or tone sources). When nil, Kind picks one.
	Backend audio.Backend
	// Kind picks the sound system when Backend is nil (default
	// audio.KindAuto: the system's devices, else the null device).
	Kind audio.Kind
	// Capture and Playback name the devices by ID or name ("" = default).
	Capture, Playback string
	// Period is the device period (default 10 ms).
	Period time.Duration
}

// CodecConfig tunes the send path.
type CodecConfig struct {
	// Codecs lists the codecs to offer by name, in preference order
	// (default: Opus, then PCMU; PCMU only when built without cgo).
	Codecs []string
	// FrameMillis is the packet duration, 10 or 20 ms (default 20).
	FrameMillis int
	// Bitrate is the Opus bitrate in bit/s (default 32000).
	Bitrate int
	// Complexity is the Opus complexity 1–10 (default
	// media.DefaultOpusComplexity, chosen for speech quality; see
	// CapacityCodec for many calls per core).
	Complexity int
	// MaxBandwidth caps the audio band Opus codes (default fullband).
	// media.OpusWideband (8 kHz, "HD voice") codes speech with SILK alone:
	// cheaper to encode, without the band above 8 kHz.
	MaxBandwidth media.OpusBandwidth
	// Application is the Opus application mode (default media.OpusVoIP).
	// media.OpusAudio codes speech with CELT on a clean link, about half
	// the encoding cost of SILK, and turns to hybrid (SILK) with in-band
	// FEC when the far end reports more than 5 % loss.
	Application media.OpusApplication
	// DisableFEC keeps Opus in-band FEC off even on a lossy link.
	DisableFEC bool
	// DTX lets Opus stop sending during silence.
	DTX bool
}

// CapacityCodec is the codec profile for a process that holds many calls
// (a bot, a gateway): media.CapacityEncoder's complexity and bandwidth,
// several times more calls per core than the default, for speech that
// scores a little lower and has nothing above 8 kHz (docs/PERFORMANCE.md
// has the figures).
func CapacityCodec() CodecConfig {
	e := media.CapacityEncoder()
	return CodecConfig{Complexity: e.Complexity, MaxBandwidth: e.MaxBandwidth}
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RingTimeout, DefaultRingTimeout)
	def(&c.ConnectTimeout, DefaultConnectTimeout)
	def(&c.RelayTimeout, DefaultRelayTimeout)
	def(&c.SignalingGrace, DefaultSignalingGrace)
	def(&c.StatsInterval, DefaultStatsInterval)
	def(&c.EndToneDuration, DefaultEndToneDuration)
	def(&c.SendTimeout, DefaultSendTimeout)
	def(&c.DisconnectedGrace, DefaultDisconnectedGrace)
	def(&c.DTMFDuration, 100*time.Millisecond)
	if c.EndToneDuration < 0 {
		c.EndToneDuration = 0
	}
	if c.Codec.FrameMillis == 0 {
		c.Codec.FrameMillis = 20
	}
	return c
}
