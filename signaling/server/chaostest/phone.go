package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling"
)

// phone is a call.Phone on a WebSocket client that rotates through the
// cluster's addresses, with virtual audio devices, PCMU and loopback media.
type phone struct {
	*call.Phone
	user  string
	tr    *watched
	audio *audio.VirtualBackend
	sock  *lastConn
}

// lastConn is the TCP connection the phone's WebSocket client dialled
// last, for cutting it.
type lastConn struct {
	mu sync.Mutex
	c  net.Conn
}

func (l *lastConn) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		l.mu.Lock()
		l.c = c
		l.mu.Unlock()
	}
	return c, err
}

// cut closes the connection under the client: to the client, the network
// dropped it.
func (l *lastConn) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil {
		_ = l.c.Close()
	}
}

// watched passes a Client's status changes on to the phone and records
// when each reconnection succeeded.
type watched struct {
	*signaling.Client
	status chan signaling.Status
	stop   chan struct{} // closed by Close: the phone reads no more
	once   sync.Once
	done   chan struct{}

	mu   sync.Mutex
	down time.Time // start of the current outage (zero while up)
	ups  []time.Duration
}

func watch(c *signaling.Client) *watched {
	w := &watched{Client: c, status: make(chan signaling.Status, 16), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer close(w.status)
		for st := range c.Status() {
			w.mu.Lock()
			switch st.State {
			case signaling.StateDown:
				w.down = st.Time
			case signaling.StateUp:
				if !w.down.IsZero() {
					w.ups = append(w.ups, st.Time.Sub(w.down))
				}
				w.down = time.Time{}
			}
			w.mu.Unlock()
			select {
			case w.status <- st:
			case <-w.stop:
			}
		}
	}()
	return w
}

func (w *watched) Status() <-chan signaling.Status { return w.status }

// Close closes the client and waits for the status relay.
func (w *watched) Close() error {
	w.once.Do(func() { close(w.stop) })
	err := w.Client.Close()
	<-w.done
	return err
}

// reconnections returns the outages so far, each from drop to `ready` on
// the next node.
func (w *watched) reconnections() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.ups...)
}

// phoneConfig is what every phone of the program uses.
type phoneConfig struct {
	ringTimeout time.Duration
	// settingEngine carries the phone's media (default: loopback).
	settingEngine *webrtc.SettingEngine
	// noReconnect makes a lost signaling connection final.
	noReconnect    bool
	signalingGrace time.Duration
	// mic is what the phone's microphone captures (nil: silence).
	mic pcm.Reader
}

func newPhone(ctx context.Context, user string, urls []string, pc phoneConfig) (*phone, error) {
	sock := &lastConn{}
	cl, err := signaling.Dial(ctx, urls[0], signaling.DialConfig{User: user, URLs: urls[1:],
		Backoff:     signaling.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second},
		Dialer:      &websocket.Dialer{NetDialContext: sock.dial, HandshakeTimeout: 10 * time.Second},
		NoReconnect: pc.noReconnect})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", user, err)
	}
	w := watch(cl)
	ab := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true, Source: pc.mic},
		{ID: "speaker", Direction: audio.Playback, Default: true},
	}})
	se := pc.settingEngine
	if se == nil {
		se = calltest.Loopback()
	}
	p, err := call.NewPhone(w, call.Config{
		SettingEngine:   se,
		SignalingGrace:  pc.signalingGrace,
		Audio:           call.AudioConfig{Backend: ab},
		Codec:           call.CodecConfig{Codecs: []string{media.CodecPCMU}},
		EndToneDuration: -1,
		RingTimeout:     pc.ringTimeout,
	})
	if err != nil {
		_ = w.Close()
		_ = ab.Close()
		return nil, fmt.Errorf("%s: %w", user, err)
	}
	return &phone{Phone: p, user: user, tr: w, audio: ab, sock: sock}, nil
}

func (p *phone) close() {
	_ = p.Phone.Close()
	_ = p.audio.Close()
}

// incoming waits for the next incoming call.
func (p *phone) incoming(ctx context.Context) (*call.Call, error) {
	select {
	case c := <-p.Incoming():
		return c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: no incoming call: %w", p.user, ctx.Err())
	}
}

// waitState waits until c is in state s (or has ended).
func waitState(ctx context.Context, c *call.Call, s call.State, d time.Duration) error {
	err := poll(ctx, d, func() bool { st := c.State(); return st == s || st == call.Ended })
	if st := c.State(); st != s {
		return fmt.Errorf("call %s with %s is %s (%s), not %s", c.ID(), c.Peer(), st, c.Reason(), s)
	}
	return err
}

// waitEnd waits until c has ended and returns its reason.
func waitEnd(ctx context.Context, c *call.Call, d time.Duration) (call.Reason, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	r, err := c.Wait(ctx)
	if err != nil {
		return "", fmt.Errorf("call %s with %s still %s after %v", c.ID(), c.Peer(), c.State(), d)
	}
	return r, nil
}
