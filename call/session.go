package call

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/apm"
	"github.com/dialtone-dev/dialtone/negotiation"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// callAudio is the device side of one call. The device's clock drives
// capture → processing → Sender and Receiver (+ tone) → playback, and
// what playback hands the device becomes the processing's echo reference;
// the pointers are swapped by the actor and read by the device callbacks
// without locks.
type callAudio struct {
	micPath
	dev  *audio.Session
	recv atomic.Pointer[media.Receiver]
	tone atomic.Pointer[tonePlayer]
	mix  []int16 // playback scratch; used only from the playback callback
}

// micPath is the capture side calls and rooms share: the microphone
// through the processing to the Sender and any recording. The actor swaps
// the pointers; the capture callback reads them without locks.
type micPath struct {
	proc   *apm.Processor // fixed for the devices' life
	sender atomic.Pointer[media.Sender]
	rec    atomic.Pointer[Recording]
	clean  []int16 // capture scratch; used only from the capture callback
}

// tonePlayer plays one tone or prompt into the playback mix and reports
// when it has run out.
type tonePlayer struct {
	src      pcmSource
	finished atomic.Bool
	onDone   func()
	once     sync.Once
}

type pcmSource interface {
	ReadPCM(p []int16) (int, error)
}

// capture runs the microphone through the processing (even before the
// Sender is attached, so the echo canceller has converged on the ringback
// by the time a call connects) and hands it to the Sender.
func (m *micPath) capture(p []int16) {
	if cap(m.clean) < len(p) {
		m.clean = make([]int16, len(p))
	}
	clean := m.clean[:len(p)]
	copy(clean, p)
	m.proc.Capture(clean)
	s := m.sender.Load()
	if s != nil {
		_, _ = s.WritePCM(clean)
	}
	if r := m.rec.Load(); r != nil {
		r.local(clean, s == nil || s.Muted())
	}
}

// openProcessed opens the devices cfg selects with the processing between
// the microphone and m's Sender, and what play hands the device as its
// echo reference. What is switched on is cfg.Processing, else what suits
// the device (processingFor).
func openProcessed(cfg Config, log *slog.Logger, m *micPath, play func([]int16)) (*audio.Session, error) {
	// The processor exists (switched off) before the devices start
	// calling; what to switch on depends on the device they turn out to be.
	proc, err := apm.New(apm.Config{})
	if err != nil {
		return nil, fmt.Errorf("call: audio processing: %w", err)
	}
	m.proc = proc
	playback := func(out []int16) {
		play(out)
		proc.Playback(out)
	}
	dev, err := openDevices(cfg.Audio, log, audio.Callbacks{Capture: m.capture, Playback: playback})
	if err != nil {
		proc.Close()
		return nil, err
	}
	proc.SetDelay(dev.Latency())
	if err := proc.SetConfig(processingFor(cfg.Processing, dev)); err != nil {
		log.Warn("audio processing", "err", err)
	}
	return dev, nil
}

// fill mixes the remote stream and any tone into out; a recording takes
// the remote stream alone.
func (a *callAudio) fill(out []int16) {
	if r := a.recv.Load(); r != nil {
		_, _ = r.ReadPCM(out)
	} else {
		clear(out)
	}
	if r := a.rec.Load(); r != nil {
		r.remote(out)
	}
	t := a.tone.Load()
	if t == nil || t.finished.Load() {
		return
	}
	if cap(a.mix) < len(out) {
		a.mix = make([]int16, len(out))
	}
	mix := a.mix[:len(out)]
	n, err := t.src.ReadPCM(mix)
	for i := range n {
		v := int32(out[i]) + int32(mix[i])
		out[i] = int16(max(-32768, min(32767, v)))
	}
	if n < len(out) || err != nil {
		if t.finished.CompareAndSwap(false, true) && t.onDone != nil {
			t.once.Do(t.onDone)
		}
	}
}

// openAudio opens this call's devices (for ringback, then the call).
func (c *Call) openAudio() error {
	if c.audio != nil {
		return nil
	}
	a := &callAudio{}
	dev, err := openProcessed(c.cfg, c.log, &a.micPath, a.fill)
	if err != nil {
		return err
	}
	a.dev = dev
	c.audio = a
	cfg := a.proc.Config()
	c.cfg.Processing = &cfg
	return nil
}

// processingFor is the processing a call starts with: the configured one,
// else apm.Default() for a sound card and nothing for the virtual or null
// device.
func processingFor(cfg *apm.Config, dev *audio.Session) apm.Config {
	if cfg != nil {
		return *cfg
	}
	switch dev.Backend().Name() {
	case "virtual", "null":
		return apm.Config{}
	}
	return apm.Default()
}

// setProcessing switches the microphone's processing for the rest of the
// call (and for its devices when they are not open yet).
func (c *Call) setProcessing(cfg apm.Config) {
	c.cfg.Processing = &cfg
	if c.audio == nil {
		return
	}
	if err := c.audio.proc.SetConfig(cfg); err != nil {
		c.log.Warn("audio processing", "err", err)
	}
}

// openDevices opens the capture and playback devices ac selects, driving
// cb: one audio session per call or room, whatever the number of peers.
func openDevices(ac AudioConfig, log *slog.Logger, cb audio.Callbacks) (*audio.Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dev, err := audio.Open(ctx, audio.Config{
		Callbacks: cb,
		Backend:   ac.Backend,
		Kind:      ac.Kind,
		Capture:   ac.Capture,
		Playback:  ac.Playback,
		Period:    ac.Period,
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("call: open audio: %w", err)
	}
	return dev, nil
}

func (c *Call) closeAudio() {
	if c.audio == nil {
		return
	}
	a := c.audio
	c.audio = nil
	a.sender.Store(nil)
	a.recv.Store(nil)
	a.tone.Store(nil)
	a.rec.Store(nil)
	if err := a.dev.Close(); err != nil {
		c.log.Debug("closing audio", "err", err)
	}
	a.proc.Close()
}

type toneKind int

const (
	toneRingback toneKind = iota + 1
	toneBusy
	toneError
)

func (c *Call) playTone(k toneKind) {
	if c.audio == nil {
		return
	}
	c.audio.tone.Store(&tonePlayer{src: c.newTone(k, 0)})
}

// playEndTone plays the busy or error tone for EndToneDuration and keeps
// the audio device until it has been heard in full.
func (c *Call) playEndTone(k toneKind) {
	if c.audio == nil || c.cfg.EndToneDuration <= 0 {
		c.stopTone()
		return
	}
	src := c.newTone(k, c.cfg.EndToneDuration)
	c.audio.tone.Store(&tonePlayer{src: src, onDone: func() { c.inbox.Put(evToneDone{}) }})
	// A device that stalls must not hold the call forever.
	c.arm(timerEndTone, c.cfg.EndToneDuration+2*time.Second)
}

func (c *Call) stopTone() {
	if c.audio != nil {
		c.audio.tone.Store(nil)
	}
}

// session is the WebRTC side of one call: the PeerConnection, its
// negotiator, the send track and the receivers.
type session struct {
	pc     *webrtc.PeerConnection
	neg    *negotiation.Negotiator
	track  *media.Track
	sender *media.Sender
	dc     *webrtc.DataChannel

	// iceServers are the STUN/TURN servers the PeerConnection gathers
	// with now; applyRelay replaces them with fresh credentials.
	iceServers []webrtc.ICEServer
	// relayPending: fresh relay credentials wait for the gathering under
	// way to complete (applyRelay).
	relayPending bool

	rtcp     rtcpState
	rtcpDone chan struct{}
	// onLoss, when set, takes the peer's loss reports for our stream
	// (percent) instead of sender: a room's sender is shared by every
	// peer and follows the worst one. Set before readRTCP starts.
	onLoss func(pct int)

	// Owned by the call's actor (stats sampling).
	prevStats                    Stats
	prevSentBytes, prevRecvBytes uint64

	mu     sync.Mutex
	recvs  []*media.Receiver
	closed bool
}

// startMedia builds the PeerConnection and starts negotiating. The caller
// is impolite and the callee polite.
func (c *Call) startMedia() error {
	if c.media != nil {
		return nil
	}
	if c.relay.waiting {
		c.relay.startPending = true
		return nil
	}
	api, err := c.phone.webrtcAPI()
	if err != nil {
		return err
	}
	pcCfg := webrtc.Configuration{ICEServers: c.iceServers()}
	if c.cfg.RelayOnly {
		pcCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(pcCfg)
	if err != nil {
		return fmt.Errorf("call: peer connection: %w", err)
	}
	s := &session{pc: pc, iceServers: pcCfg.ICEServers}
	fail := func(err error) error {
		if s.neg != nil {
			_ = s.neg.Close()
		}
		_ = pc.Close()
		return err
	}
	s.neg, err = negotiation.New(pc, negotiation.Config{
		Polite: !c.outgoing,
		// The caller offers as soon as it hears `accept`; the callee answers
		// its own track into that offer instead of racing it with its own.
		WaitForOffer: !c.outgoing,
		Send: func(sig negotiation.Signal) error {
			c.send(signaling.TypeSignal, sig)
			return nil
		},
		Logger:            c.log,
		DisconnectedGrace: c.cfg.DisconnectedGrace,
		OnFailed:          func(err error) { c.inbox.Put(evNegFailed{err: err}) },
		// pion runs each state callback on a goroutine of its own, so two
		// quick changes can arrive in either order: post the state the
		// connection is in now, not the one the callback carries.
		OnICEConnectionStateChange: func(webrtc.ICEConnectionState) {
			c.inbox.Put(evICEState{state: pc.ICEConnectionState()})
		},
	})
	if err != nil {
		return fail(fmt.Errorf("call: negotiator: %w", err))
	}
	pc.OnConnectionStateChange(func(webrtc.PeerConnectionState) {
		c.inbox.Put(evPeerState{state: pc.ConnectionState()})
	})
	pc.OnICEGatheringStateChange(func(st webrtc.ICEGatheringState) {
		if st == webrtc.ICEGatheringStateComplete {
			c.inbox.Put(evGathered{})
		}
	})
	// The device side is fixed for the call's life; the callbacks below run
	// on pion's goroutines and must not touch actor-owned fields.
	dev := c.audio
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		r, err := media.NewTrackReceiver(tr, media.ReceiverConfig{
			Logger: c.log,
			OnPacket: func(p *rtp.Packet, codec string) {
				if dev == nil {
					return
				}
				if rec := dev.rec.Load(); rec != nil {
					rec.received(p, codec == media.CodecOpus)
				}
			},
			OnDTMF: func(d rune, _ time.Duration) {
				c.inbox.Put(evDTMF{digit: d})
			},
			OnVoice: func(v media.VoiceEvent) {
				c.inbox.Put(evTalking{remote: true, on: v.Talking, level: v.Level})
			},
		})
		if err != nil {
			c.log.Warn("cannot receive track", "codec", tr.Codec().MimeType, "err", err)
			return
		}
		if !s.keepReceiver(r) {
			return
		}
		if dev != nil {
			dev.recv.Store(r)
		}
	})

	negotiated, id := true, uint16(0)
	s.dc, err = pc.CreateDataChannel("text", &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &id})
	if err != nil {
		return fail(fmt.Errorf("call: data channel: %w", err))
	}
	s.dc.OnOpen(func() { c.inbox.Put(evTextOpen{}) })
	s.dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		if msg.IsString {
			c.inbox.Put(evText{text: string(msg.Data)})
		}
	})

	s.track = media.NewTrack("audio", "dialtone")
	s.track.OnBound(func() { c.inbox.Put(evTrackBound{}) })
	rtpSender, err := pc.AddTrack(s.track)
	if err != nil {
		return fail(fmt.Errorf("call: add track: %w", err))
	}
	s.sender, err = media.NewSender(s.track, media.SenderConfig{
		FrameMillis:  c.cfg.Codec.FrameMillis,
		Bitrate:      c.cfg.Codec.Bitrate,
		Complexity:   c.cfg.Codec.Complexity,
		MaxBandwidth: c.cfg.Codec.MaxBandwidth,
		Application:  c.cfg.Codec.Application,
		DisableFEC:   c.cfg.Codec.DisableFEC,
		DTX:          c.cfg.Codec.DTX,
		Logger:       c.log,
		OnVoice: func(v media.VoiceEvent) {
			c.inbox.Put(evTalking{remote: false, on: v.Talking, level: v.Level})
		},
	})
	if err != nil {
		return fail(fmt.Errorf("call: sender: %w", err))
	}
	s.sender.SetMuted(c.Muted())
	s.rtcpDone = make(chan struct{})
	go s.readRTCP(rtpSender, func() uint32 {
		if enc := rtpSender.GetParameters().Encodings; len(enc) > 0 {
			return uint32(enc[0].SSRC)
		}
		return 0
	})
	c.media = s
	if a := c.audio; a != nil {
		a.sender.Store(s.sender)
	}
	c.startRecording()
	early := c.early
	c.early = nil
	for _, sig := range early {
		c.handleSignal(sig)
	}
	return nil
}

// detachMedia unhooks the WebRTC side from the call and the audio device;
// the caller closes it (session.close). The audio device stays for an end
// tone.
func (c *Call) detachMedia() *session {
	s := c.media
	if s == nil {
		return nil
	}
	c.media = nil
	if a := c.audio; a != nil {
		a.sender.Store(nil)
		a.recv.Store(nil)
	}
	return s
}

// close stops the negotiator, the send path (when the session owns it),
// the receive paths and the PeerConnection, and waits for the RTCP reader.
func (s *session) close(log *slog.Logger) {
	_ = s.neg.Close()
	if s.sender != nil {
		_ = s.sender.Close()
	}
	if err := s.pc.Close(); err != nil {
		log.Debug("closing peer connection", "err", err)
	}
	if s.rtcpDone != nil {
		<-s.rtcpDone
	}
	s.mu.Lock()
	recvs := s.recvs
	s.recvs = nil
	s.closed = true
	s.mu.Unlock()
	for _, r := range recvs {
		_ = r.Close()
	}
}

// setDevice switches the capture or playback device of a live call. The
// switch can take a moment (opening the new device), so it runs off the
// actor's critical path only as long as the device open takes.
func (c *Call) setDevice(capture bool, device string) error {
	if c.State() == Ended {
		return ErrEnded
	}
	if c.audio == nil {
		// Not yet open (an incoming call still ringing): remember the choice.
		if capture {
			c.cfg.Audio.Capture = device
		} else {
			c.cfg.Audio.Playback = device
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The echo path changes with the device: the canceller gets the new
	// latency (and finds the new echo by itself).
	defer func() { c.audio.proc.SetDelay(c.audio.dev.Latency()) }()
	if capture {
		c.cfg.Audio.Capture = device
		return c.audio.dev.SetCapture(ctx, device)
	}
	c.cfg.Audio.Playback = device
	return c.audio.dev.SetPlayback(ctx, device)
}

func (c *Call) setMuted(on bool) {
	c.mu.Lock()
	c.muted = on
	c.mu.Unlock()
	if c.media != nil {
		c.media.sender.SetMuted(on)
	}
}

// waitForMedia reports whether a SendText or SendDTMF must wait (the call
// is answered but its media path is not up yet), or answers it at once
// with the error of a call not answered yet or already ended.
func (c *Call) waitForMedia(r *request, what string) bool {
	switch c.State() {
	case Ended:
		r.do(func() error { return ErrEnded })
		return false
	case Connecting, Connected, Reconnecting:
		return true
	default:
		r.do(func() error { return fmt.Errorf("call: %s: %w (not answered yet)", what, ErrState) })
		return false
	}
}

func (c *Call) sendText(cmd cmdText) {
	if !c.waitForMedia(cmd.request, "send text") {
		return
	}
	if c.media == nil || c.media.dc.ReadyState() != webrtc.DataChannelStateOpen {
		c.texts = slices.DeleteFunc(c.texts, func(t cmdText) bool { return t.withdrawn() })
		c.texts = append(c.texts, cmd)
		return
	}
	cmd.do(func() error { return c.media.dc.SendText(cmd.text) })
}

// flushText sends the texts that waited for the data channel to open;
// those whose callers gave up meanwhile are dropped.
func (c *Call) flushText() {
	if c.media == nil || c.media.dc.ReadyState() != webrtc.DataChannelStateOpen {
		return
	}
	for _, t := range c.texts {
		t.do(func() error { return c.media.dc.SendText(t.text) })
	}
	c.texts = nil
}

func (c *Call) sendDTMF(cmd cmdDTMF) {
	if !c.waitForMedia(cmd.request, "send DTMF") {
		return
	}
	if !c.canPlayDTMF() {
		// Requests whose callers gave up while waiting go first, so a
		// caller retrying with short timeouts does not pile them up.
		c.dtmf = slices.DeleteFunc(c.dtmf, func(d cmdDTMF) bool { return d.withdrawn() })
		c.dtmf = append(c.dtmf, cmd)
		return
	}
	cmd.do(func() error { return c.playDTMF(cmd.digits) })
}

// flushDTMF sends the digits that waited for the call to connect, in
// order; those whose callers gave up meanwhile are dropped.
func (c *Call) flushDTMF() {
	if !c.canPlayDTMF() {
		return
	}
	for _, d := range c.dtmf {
		d.do(func() error { return c.playDTMF(d.digits) })
	}
	c.dtmf = nil
}

// canPlayDTMF reports that digits can go out now: the call is connected
// and pion has bound the send track (it does so just after reporting
// connected; evTrackBound flushes what waited for it).
func (c *Call) canPlayDTMF() bool {
	if c.media == nil || c.State() != Connected {
		return false
	}
	_, bound := c.media.track.Negotiated()
	return bound
}

func (c *Call) playDTMF(digits string) error {
	for _, d := range digits {
		if err := c.media.sender.SendDTMF(d, c.cfg.DTMFDuration); err != nil {
			if errors.Is(err, media.ErrNoDTMF) {
				return fmt.Errorf("call: send DTMF: %w", ErrNoDTMF)
			}
			return fmt.Errorf("call: send DTMF %q: %w", d, err)
		}
	}
	return nil
}

// iceServers returns the ICE servers for a new PeerConnection.
func (c *Call) iceServers() []webrtc.ICEServer {
	if c.cfg.ICEServers != nil {
		return c.cfg.ICEServers
	}
	return toWebRTC(c.phone.relayServers())
}

func toWebRTC(in []signaling.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(in))
	for _, s := range in {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// webrtcAPI builds, once per phone, the pion API every call's
// PeerConnection comes from: the codecs, the RTCP report interceptors and
// the SettingEngine. pion copies the MediaEngine and builds fresh
// interceptors per PeerConnection, so sharing it is safe, and it keeps that
// work off each call's set-up.
func (p *Phone) webrtcAPI() (*webrtc.API, error) {
	p.apiOnce.Do(func() {
		m := &webrtc.MediaEngine{}
		if err := media.RegisterCodecs(m, p.cfg.Codec.Codecs...); err != nil {
			p.apiErr = fmt.Errorf("call: register codecs: %w", err)
			return
		}
		// Only what a voice call uses: RTCP sender/receiver reports (RTT,
		// loss → Opus FEC). NACK retransmission and transport-wide
		// congestion feedback, in pion's default set, buy nothing for 20 ms
		// Opus frames (a retransmission arrives after the frame was
		// concealed) and cost per-packet work and buffers; pion's stats
		// interceptor serves only PeerConnection.GetStats, which we do not
		// call (see consentRTT), and books every packet.
		ir := &interceptor.Registry{}
		ir.Add(&reuseAttributes{}) // first: innermost on the read path
		if err := webrtc.ConfigureRTCPReports(ir); err != nil {
			p.apiErr = fmt.Errorf("call: interceptors: %w", err)
			return
		}
		var se webrtc.SettingEngine
		if p.cfg.SettingEngine != nil {
			se = *p.cfg.SettingEngine
		}
		if se.LoggerFactory == nil {
			se.LoggerFactory = pionLogs{log: p.log}
		}
		if p.cfg.RelayOnly {
			// pion holds a relay pair back for 2 s in case a direct one
			// succeeds; with only relay candidates there is none to wait
			// for, and the wait would be the whole of the set-up time.
			se.SetRelayAcceptanceMinWait(0)
		}
		p.api = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	})
	return p.api, p.apiErr
}

// keepReceiver files r with the session's receivers, which close with it;
// once the session has closed it closes r instead and reports false.
func (s *session) keepReceiver(r *media.Receiver) bool {
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.recvs = append(s.recvs, r)
	}
	s.mu.Unlock()
	if closed {
		_ = r.Close()
	}
	return !closed
}
