package negotiation

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// loopbackAPI returns a pion API that only uses 127.0.0.1.
func loopbackAPI(t testing.TB, tweak func(*webrtc.SettingEngine)) *webrtc.API {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(n string) bool { return n == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if tweak != nil {
		tweak(&se)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

// link carries signals one way, in order, asynchronously, like a network:
// each signal is JSON round-tripped and delivered delay() after it was sent
// (never before the signal ahead of it). A held link queues until released.
type link struct {
	mu     sync.Mutex
	q      []timedSignal
	closed bool
	held   bool
	last   time.Time
	wake   chan struct{}
	dst    *Negotiator
	delay  func() time.Duration
	errs   []error
	done   chan struct{}
}

type timedSignal struct {
	s  Signal
	at time.Time
}

func newLink(delay func() time.Duration) *link {
	return &link{wake: make(chan struct{}, 1), done: make(chan struct{}), delay: delay}
}

func (l *link) send(s Signal) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var c Signal
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	at := time.Now()
	if l.delay != nil {
		at = at.Add(l.delay())
	}
	l.mu.Lock()
	if at.Before(l.last) {
		at = l.last
	}
	l.last = at
	if !l.closed {
		l.q = append(l.q, timedSignal{s: c, at: at})
	}
	l.mu.Unlock()
	l.poke()
	return nil
}

func (l *link) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// hold queues signals until release.
func (l *link) hold() {
	l.mu.Lock()
	l.held = true
	l.mu.Unlock()
}

// release delivers the held signals, the first after extra.
func (l *link) release(extra time.Duration) {
	l.mu.Lock()
	l.held = false
	now := time.Now().Add(extra)
	for i := range l.q {
		if l.q[i].at.Before(now) {
			l.q[i].at = now
		}
	}
	l.mu.Unlock()
	l.poke()
}

func (l *link) start(dst *Negotiator) {
	l.dst = dst
	go l.run()
}

func (l *link) run() {
	defer close(l.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return
		}
		if len(l.q) == 0 || l.held {
			l.mu.Unlock()
			<-l.wake
			continue
		}
		next := l.q[0]
		if wait := time.Until(next.at); wait > 0 {
			l.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-l.wake:
				if !timer.Stop() {
					<-timer.C
				}
			}
			continue
		}
		l.q = l.q[1:]
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := l.dst.HandleSignal(ctx, next.s)
		cancel()
		if err != nil {
			l.mu.Lock()
			l.errs = append(l.errs, err)
			l.mu.Unlock()
		}
	}
}

func (l *link) errors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

func (l *link) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.poke()
	<-l.done
}

// peer is one side of a test connection.
type peer struct {
	pc     *webrtc.PeerConnection
	n      *Negotiator
	out    *link
	mu     sync.Mutex
	tracks []*webrtc.TrackRemote
	failed chan error
	close  func() // closes the whole pair, idempotent
}

// connected reports whether the PeerConnection is connected now. It asks
// the PeerConnection rather than recording OnConnectionStateChange: pion
// runs each call of that handler on a goroutine of its own, so two changes
// in quick succession (connecting, then connected, a few milliseconds apart
// during an ICE restart) can reach a handler in either order.
func (p *peer) connected() bool {
	return p.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
}

func (p *peer) remoteTracks() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.tracks)
}

// pairOptions shapes newPair.
type pairOptions struct {
	apiA, apiB *webrtc.API
	delay      func() time.Duration
	cfg        func(*Config)
	beforeNew  func(pc *webrtc.PeerConnection, polite bool) // runs before New
}

// newPair creates two PeerConnections with negotiators joined by links; a
// is impolite, b polite. Nothing is negotiated until a track or data
// channel is added.
func newPair(t testing.TB, o pairOptions) (a, b *peer) {
	t.Helper()
	if o.apiA == nil {
		o.apiA = loopbackAPI(t, nil)
	}
	if o.apiB == nil {
		o.apiB = o.apiA
	}
	mk := func(api *webrtc.API, polite bool) *peer {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		require.NoError(t, err)
		p := &peer{pc: pc, out: newLink(o.delay), failed: make(chan error, 1)}
		pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			p.mu.Lock()
			p.tracks = append(p.tracks, tr)
			p.mu.Unlock()
		})
		cfg := Config{Polite: polite, Send: p.out.send, OnFailed: func(err error) {
			select {
			case p.failed <- err:
			default:
			}
		}}
		if o.cfg != nil {
			o.cfg(&cfg)
		}
		if o.beforeNew != nil {
			o.beforeNew(pc, polite)
		}
		n, err := New(pc, cfg)
		require.NoError(t, err)
		p.n = n
		return p
	}
	a, b = mk(o.apiA, false), mk(o.apiB, true)
	a.out.start(b.n)
	b.out.start(a.n)
	closeAll := sync.OnceFunc(func() {
		a.out.close()
		b.out.close()
		require.NoError(t, a.n.Close())
		require.NoError(t, b.n.Close())
		require.NoError(t, a.pc.Close())
		require.NoError(t, b.pc.Close())
	})
	a.close, b.close = closeAll, closeAll
	t.Cleanup(closeAll)
	return a, b
}

// idle reports, from the actor, whether no exchange is in progress or due.
func (n *Negotiator) idle() bool {
	reply := make(chan bool, 1)
	if !n.post(func() {
		reply <- !n.busy() && !n.wantNegotiation && !n.wantRestart
	}) {
		return false
	}
	select {
	case ok := <-reply:
		return ok
	case <-n.loopDone:
		return false
	}
}

// localUfrag returns the ICE ufrag of the current local description.
func localUfrag(t testing.TB, pc *webrtc.PeerConnection) string {
	t.Helper()
	d := pc.CurrentLocalDescription()
	require.NotNil(t, d)
	p, err := d.Unmarshal()
	require.NoError(t, err)
	return descriptionUfrag(p)
}

func newAudioTrack(t testing.TB, id string) *webrtc.TrackLocalStaticSample {
	t.Helper()
	tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, id, "stream-"+id)
	require.NoError(t, err)
	return tr
}
