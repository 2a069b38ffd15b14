package call

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/negotiation"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/pion/webrtc/v4"
)

// roomAudio is the device side of a room: one capture, through the
// processing, feeding the one Sender whose packets go to every member, and
// one playback mixing every member's Receiver. The actor swaps the
// pointers; the device callbacks read them without locks.
type roomAudio struct {
	micPath
	dev    *audio.Session
	inputs atomic.Pointer[[]*mixInput]
	// Playback scratch, used only from the playback callback.
	buf []int16
	acc []int32
}

// mixInput is one member's stream in the playback mix.
type mixInput struct {
	recv atomic.Pointer[media.Receiver]
	gain atomic.Uint64 // float64 bits
}

func newMixInput(gain float64) *mixInput {
	in := &mixInput{}
	in.setGain(gain)
	return in
}

func (in *mixInput) setGain(g float64) { in.gain.Store(math.Float64bits(g)) }

// playback mixes every member's audio, each at its gain. Every receiver is
// pulled each period, even at gain 0, so its jitter buffer keeps the
// device's pace.
func (a *roomAudio) playback(out []int16) {
	if r := a.rec.Load(); r != nil {
		defer r.remote(out) // the mix, once made
	}
	var ins []*mixInput
	if p := a.inputs.Load(); p != nil {
		ins = *p
	}
	if len(ins) == 0 {
		clear(out)
		return
	}
	if cap(a.buf) < len(out) {
		a.buf = make([]int16, len(out))
		a.acc = make([]int32, len(out))
	}
	buf, acc := a.buf[:len(out)], a.acc[:len(out)]
	clear(acc)
	for _, in := range ins {
		r := in.recv.Load()
		if r == nil {
			continue
		}
		n, _ := r.ReadPCM(buf)
		g := math.Float64frombits(in.gain.Load())
		if g == 1 {
			for i, v := range buf[:n] {
				acc[i] += int32(v)
			}
			continue
		}
		for i, v := range buf[:n] {
			acc[i] += int32(float64(v) * g)
		}
	}
	for i, v := range acc {
		out[i] = int16(max(-32768, min(32767, v)))
	}
}

// roomPeer is the peer connection with one other member.
type roomPeer struct {
	member  signaling.Member
	offerer bool
	// attempt numbers the pair's peer connections (signaling.RoomSignal);
	// failures counts the failed ones since the pair last connected.
	attempt  uint32
	failures int
	s        *session  // nil once closed (failed)
	in       *mixInput // its place in the playback mix
	// connected once MemberConnected was emitted; reconnecting between
	// MemberReconnecting and MemberReconnected.
	connected, reconnecting bool
	loss                    int      // the member's last reported loss of our stream, percent
	texts                   []string // waiting for the data channel to open
	// connectTimer bounds the set-up (Config.ConnectTimeout): a member
	// whose media never connects is reported MemberFailed.
	connectTimer *time.Timer
	// retryTimer starts the pair over after a failure (the offerer's).
	retryTimer *time.Timer
}

// The pause before the offerer of a pair whose peer connection failed
// starts over: pairRetryFirst after the first failure, doubling with each
// failure after it, at most pairRetryMax.
const (
	pairRetryFirst = time.Second
	pairRetryMax   = 30 * time.Second
)

func pairRetryDelay(failures int) time.Duration {
	d := pairRetryFirst
	for i := 1; i < failures && d < pairRetryMax; i++ {
		d *= 2
	}
	return min(d, pairRetryMax)
}

// openSender builds the send path shared by every member: one Track, one
// Sender.
func (r *Room) openSender() error {
	var err error
	r.track = media.NewTrack("audio", "dialtone")
	r.sender, err = media.NewSender(r.track, media.SenderConfig{
		FrameMillis:  r.cfg.Codec.FrameMillis,
		Bitrate:      r.cfg.Codec.Bitrate,
		Complexity:   r.cfg.Codec.Complexity,
		MaxBandwidth: r.cfg.Codec.MaxBandwidth,
		Application:  r.cfg.Codec.Application,
		DisableFEC:   r.cfg.Codec.DisableFEC,
		DTX:          r.cfg.Codec.DTX,
		Logger:       r.log,
	})
	if err != nil {
		return fmt.Errorf("call: sender: %w", err)
	}
	r.sender.SetMuted(r.Muted())
	return nil
}

// openAudio opens the devices once the server has admitted us: a refused
// join never touches them.
func (r *Room) openAudio() error {
	a := &roomAudio{}
	dev, err := openProcessed(r.cfg, r.log, &a.micPath, a.playback)
	if err != nil {
		return err
	}
	a.dev = dev
	a.sender.Store(r.sender)
	r.audio = a
	r.mixInputsChanged()
	return nil
}

// mixInputsChanged gives the playback callback the current members'
// streams.
func (r *Room) mixInputsChanged() {
	if r.audio == nil {
		return
	}
	ins := make([]*mixInput, 0, len(r.peers)+1)
	for _, p := range r.peers {
		ins = append(ins, p.in)
	}
	if r.mixer != nil {
		ins = append(ins, r.mixer.in) // Janus's mix of the others
	}
	r.audio.inputs.Store(&ins)
}

// newPeer builds the peer connection with member m, attempt attempt of
// the pair, and starts negotiating. Both sides compute the roles from the
// two sessions: the later joiner (the higher session) offers and is
// impolite, the earlier one waits for its offer and is polite. in is the
// member's place in the mix, nil for a new one.
func (r *Room) newPeer(m signaling.Member, attempt uint32, in *mixInput) (*roomPeer, error) {
	api, err := r.phone.webrtcAPI()
	if err != nil {
		return nil, err
	}
	pcCfg := webrtc.Configuration{ICEServers: r.cfg.ICEServers}
	if pcCfg.ICEServers == nil {
		pcCfg.ICEServers = toWebRTC(r.phone.relayServers())
	}
	if r.cfg.RelayOnly {
		pcCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	cert, err := r.phone.roomCertificate()
	if err != nil {
		return nil, err
	}
	pcCfg.Certificates = []webrtc.Certificate{*cert}
	pc, err := api.NewPeerConnection(pcCfg)
	if err != nil {
		return nil, fmt.Errorf("call: peer connection: %w", err)
	}
	mine := r.roster.Session()
	id := evMemberPeer{user: m.User, session: m.Session, attempt: attempt}
	p := &roomPeer{member: m, offerer: mine > m.Session, attempt: attempt, in: in}
	if p.in == nil {
		r.mu.Lock()
		p.in = newMixInput(r.volumeLocked(m.User))
		r.mu.Unlock()
	}
	s := &session{pc: pc}
	fail := func(err error) (*roomPeer, error) {
		if s.neg != nil {
			_ = s.neg.Close()
		}
		_ = pc.Close()
		return nil, err
	}
	s.neg, err = negotiation.New(pc, negotiation.Config{
		Polite:       !p.offerer,
		WaitForOffer: !p.offerer,
		Send: func(sig negotiation.Signal) error {
			data, err := jsonSignal(sig)
			if err != nil {
				return err
			}
			r.send(signaling.TypeRoomSignal, m.User, signaling.RoomSignal{Session: mine, PeerSession: m.Session, Attempt: attempt, Signal: data})
			return nil
		},
		Logger:            r.log.With("member", m.User),
		DisconnectedGrace: r.cfg.DisconnectedGrace,
		OnFailed:          func(err error) { r.inbox.Put(evRoomNegFailed{evMemberPeer: id, err: err}) },
		OnICEConnectionStateChange: func(webrtc.ICEConnectionState) {
			r.inbox.Put(evRoomICEState{evMemberPeer: id, state: pc.ICEConnectionState()})
		},
	})
	if err != nil {
		return fail(fmt.Errorf("call: negotiator: %w", err))
	}
	pc.OnConnectionStateChange(func(webrtc.PeerConnectionState) {
		r.inbox.Put(evRoomPeerState{evMemberPeer: id, state: pc.ConnectionState()})
	})
	in = p.in
	log := r.log.With("member", m.User)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		rc, err := media.NewTrackReceiver(tr, media.ReceiverConfig{
			Logger: log,
			OnVoice: func(v media.VoiceEvent) {
				r.inbox.Put(evRoomTalking{evMemberPeer: id, on: v.Talking, level: v.Level})
			},
		})
		if err != nil {
			log.Warn("cannot receive track", "codec", tr.Codec().MimeType, "err", err)
			return
		}
		if !s.keepReceiver(rc) {
			return
		}
		in.recv.Store(rc)
	})
	negotiated, dcID := true, uint16(0)
	s.dc, err = pc.CreateDataChannel("text", &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &dcID})
	if err != nil {
		return fail(fmt.Errorf("call: data channel: %w", err))
	}
	s.dc.OnOpen(func() { r.inbox.Put(evRoomTextOpen{evMemberPeer: id}) })
	s.dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		if msg.IsString {
			r.inbox.Put(evRoomText{evMemberPeer: id, text: string(msg.Data)})
		}
	})
	// The one track of the room: every member's PeerConnection binds it,
	// and each packet the sender encodes goes to all of them.
	rtpSender, err := pc.AddTrack(r.track)
	if err != nil {
		return fail(fmt.Errorf("call: add track: %w", err))
	}
	s.onLoss = func(pct int) { r.inbox.Put(evRoomLoss{evMemberPeer: id, pct: pct}) }
	s.rtcpDone = make(chan struct{})
	go s.readRTCP(rtpSender, func() uint32 {
		if enc := rtpSender.GetParameters().Encodings; len(enc) > 0 {
			return uint32(enc[0].SSRC)
		}
		return 0
	})
	p.s = s
	p.connectTimer = time.AfterFunc(r.cfg.ConnectTimeout, func() { r.inbox.Put(evRoomPeerTimeout{evMemberPeer: id}) })
	return p, nil
}

// roomCertificate is the DTLS certificate of every peer connection of
// the phone's rooms. Without one pion makes a certificate per
// PeerConnection (a key and a signature: most of the CPU a
// PeerConnection's creation takes), which for a joiner means one per
// member, one after the other on the actor before its offers go out.
// Members know a certificate by its fingerprint in the SDP, carried by the
// authenticated signaling, so sharing one is as safe as one per connection
// (a browser reusing RTCPeerConnection.generateCertificate's does the
// same). A new one is made when it has less than certMargin left.
func (p *Phone) roomCertificate() (*webrtc.Certificate, error) {
	p.mu.Lock()
	cert := p.cert
	p.mu.Unlock()
	if cert != nil && time.Until(cert.Expires()) > certMargin {
		return cert, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("call: certificate key: %w", err)
	}
	cert, err = webrtc.GenerateCertificate(key)
	if err != nil {
		return nil, fmt.Errorf("call: certificate: %w", err)
	}
	p.mu.Lock()
	p.cert = cert
	p.mu.Unlock()
	return cert, nil
}

// certMargin is the validity a room's certificate must have left to be
// used for a new peer connection.
const certMargin = time.Hour

// onRelayConfig takes the phone's new relay credentials (the phone has
// stored them): peer connections made from now on get them (newPeer), and
// the live ones gather with them at their next ICE restart, for which the
// credentials they were made with may have expired. The next refresh is
// armed for when these go stale. A room lives longer than the call set-up
// that refreshes a call's credentials.
func (r *Room) onRelayConfig() {
	if r.cfg.ICEServers != nil || !r.joined {
		return
	}
	servers := toWebRTC(r.phone.relayServers())
	for _, p := range r.peers {
		if p.s == nil {
			continue
		}
		c := p.s.pc.GetConfiguration()
		c.ICEServers = servers
		if err := p.s.pc.SetConfiguration(c); err != nil {
			r.log.Warn("relay servers not updated", "member", p.member.User, "err", err)
		}
	}
	r.armRelayRefresh()
}

// armRelayRefresh arms the request for fresh relay credentials for when
// the phone's go stale.
func (r *Room) armRelayRefresh() {
	if r.cfg.ICEServers != nil {
		return
	}
	if d, ok := r.phone.relayStaleIn(); ok {
		r.arm(timerRelay, d)
	}
}

// closePeer closes p's peer connection off the actor (it can take a
// while); release waits for it.
func (r *Room) closePeer(p *roomPeer) {
	if p.connectTimer != nil {
		p.connectTimer.Stop()
	}
	if p.retryTimer != nil {
		p.retryTimer.Stop()
	}
	s := p.s
	p.s = nil
	p.in.recv.Store(nil)
	if s == nil {
		return
	}
	r.closers.Add(1)
	go func() {
		defer r.closers.Done()
		s.close(r.log)
	}()
}

func (r *Room) onPeerState(id evMemberPeer, st webrtc.PeerConnectionState) {
	p := r.peer(id)
	if p == nil {
		return
	}
	if st == webrtc.PeerConnectionStateConnected && !p.connected {
		p.connected, p.failures = true, 0
		p.connectTimer.Stop()
		r.updateView(id.user, func(m *Member) { m.Connected = true })
		kind := MemberConnected
		if p.reconnecting {
			// A new peer connection replaced one that still worked here.
			kind, p.reconnecting = MemberReconnected, false
		}
		r.emitMember(kind, id.user, nil)
	}
}

func (r *Room) onICEState(id evMemberPeer, st webrtc.ICEConnectionState) {
	p := r.peer(id)
	if p == nil || !p.connected {
		return
	}
	switch st {
	case webrtc.ICEConnectionStateDisconnected, webrtc.ICEConnectionStateFailed:
		if !p.reconnecting {
			p.reconnecting = true
			r.updateView(id.user, func(m *Member) { m.Connected = false })
			r.emitMember(MemberReconnecting, id.user, nil)
		}
	case webrtc.ICEConnectionStateConnected, webrtc.ICEConnectionStateCompleted:
		if p.reconnecting {
			p.reconnecting = false
			r.updateView(id.user, func(m *Member) { m.Connected = true })
			r.emitMember(MemberReconnected, id.user, nil)
		}
	}
}

// sendText sends text to every member whose data channel is open and
// queues it for the others.
func (r *Room) sendText(text string) error {
	if r.isEnded() {
		return ErrEnded
	}
	var errs []error
	for _, p := range r.peers {
		if p.s == nil {
			continue
		}
		if p.s.dc.ReadyState() != webrtc.DataChannelStateOpen {
			p.texts = append(p.texts, text)
			continue
		}
		if err := p.s.dc.SendText(text); err != nil {
			errs = append(errs, fmt.Errorf("call: send text to %s: %w", p.member.User, err))
		}
	}
	return errors.Join(errs...)
}

// flushText sends what waited for p's data channel to open.
func (r *Room) flushText(p *roomPeer) {
	if p.s == nil || p.s.dc.ReadyState() != webrtc.DataChannelStateOpen {
		return
	}
	for _, t := range p.texts {
		if err := p.s.dc.SendText(t); err != nil {
			r.log.Warn("text not sent", "member", p.member.User, "err", err)
		}
	}
	p.texts = nil
}

// reportLoss gives the shared sender the loss of the member that loses
// most of our stream, so in-band FEC protects the worst link. Only that
// member's reports reach the sender: its loss smoothing counts one report
// per RTCP interval, as on a 1:1 call.
func (r *Room) reportLoss(from *roomPeer) {
	if r.sender != nil && worstPeer(r.peers) == from {
		r.sender.SetPacketLoss(from.loss)
	}
}

// worstPeer is the member with a live peer connection that reports the
// most loss (of equals, the first by user ID), or nil.
func worstPeer(peers map[string]*roomPeer) *roomPeer {
	var worst *roomPeer
	for _, p := range peers {
		if p.s == nil {
			continue
		}
		if worst == nil || p.loss > worst.loss || (p.loss == worst.loss && p.member.User < worst.member.User) {
			worst = p
		}
	}
	return worst
}

// sampleStats reports a stats sample for every connected member.
func (r *Room) sampleStats() {
	if r.sender == nil {
		return
	}
	frame := time.Duration(r.cfg.Codec.FrameMillis) * time.Millisecond
	users := make([]string, 0, len(r.peers))
	for u, p := range r.peers {
		if p.s != nil && p.connected {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	for _, u := range users {
		st := r.peers[u].s.sample(r.sender, frame)
		r.emitMember(MemberStats, u, func(e *RoomEvent) { e.Stats = st })
	}
}
