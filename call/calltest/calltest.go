// Package calltest runs calls in one process for tests, the way
// net/http/httptest runs HTTP servers: a real signaling server core, phones
// connected to it in memory, WebRTC on 127.0.0.1 only, and virtual audio
// devices whose microphones play what the test chooses and whose speakers
// record what was heard.
package calltest

import (
	"context"
	"fmt"
	"sync"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/dialtone-dev/dialtone/signaling/server/servertest"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Lab is a signaling server with in-process phones.
type Lab struct {
	// Server is the signaling server core; tests may use it directly (for
	// example to check presence).
	Server *server.Server

	mu     sync.Mutex
	phones []*Phone
}

// NewLab starts a lab whose server accepts any user name. cfg may set push
// hooks, TTLs and limits; DevMode is forced on.
func NewLab(cfg server.Config) *Lab {
	cfg.DevMode = true
	return &Lab{Server: server.New(cfg)}
}

// Loopback returns a SettingEngine that keeps a phone's media on
// 127.0.0.1: UDP over IPv4 only, the loopback interface only, loopback
// candidates included (pion leaves them out by default), no mDNS. It is for
// programs whose both ends run on one host (demos, bots beside their
// server, tests); set it as call.Config.SettingEngine.
func Loopback() *webrtc.SettingEngine {
	se := &webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se
}

// PhoneOptions configures one lab phone.
type PhoneOptions struct {
	// Config is the phone's configuration. When its SettingEngine is nil
	// the lab uses Loopback(); when its Audio.Backend is nil the lab gives
	// the phone a virtual microphone playing Mic and a virtual speaker
	// recording into Phone.Speaker.
	Config call.Config
	// Mic is what the phone's microphone captures (nil: silence).
	Mic pcm.Reader
	// Signaling makes the phone's signaling link lossy, slow or reordering.
	Signaling servertest.Faults
}

// Phone is a lab phone: a call.Phone plus handles on its signaling link and
// audio devices.
type Phone struct {
	*call.Phone
	// Conn is the phone's in-memory signaling connection (Disconnect and
	// Reconnect simulate a lost connection).
	Conn *server.LocalConn
	// Link carries Conn's messages to and from the phone; its SetFaults
	// makes the signaling link lossy, slow or reordering.
	Link *servertest.Link
	// Audio is the phone's virtual sound system.
	Audio *audio.VirtualBackend
	// Speaker records everything the phone played.
	Speaker *pcm.Recorder
}

// NewPhone connects a phone for user.
func (l *Lab) NewPhone(ctx context.Context, user string, opts PhoneOptions) (*Phone, error) {
	conn, err := l.Server.ConnectLocal(ctx, user, server.LocalOptions{})
	if err != nil {
		return nil, fmt.Errorf("calltest: connect %s: %w", user, err)
	}
	cfg := opts.Config
	if cfg.SettingEngine == nil {
		cfg.SettingEngine = Loopback()
	}
	p := &Phone{Conn: conn, Link: servertest.NewLink(conn, opts.Signaling), Speaker: &pcm.Recorder{}}
	if cfg.Audio.Backend == nil {
		p.Audio = audio.NewVirtualBackend(audio.VirtualBackendConfig{
			Devices: []audio.VirtualDevice{
				{ID: "mic", Name: user + " microphone", Direction: audio.Capture, Default: true, Source: opts.Mic},
				{ID: "speaker", Name: user + " speaker", Direction: audio.Playback, Default: true, Sink: p.Speaker},
			},
			Logger: cfg.Logger,
		})
		cfg.Audio.Backend = p.Audio
	}
	p.Phone, err = call.NewPhone(p.Link, cfg)
	if err != nil {
		_ = p.Link.Close()
		return nil, err
	}
	l.mu.Lock()
	l.phones = append(l.phones, p)
	l.mu.Unlock()
	return p, nil
}

// Close closes every phone the lab made, then the server.
func (l *Lab) Close() {
	l.mu.Lock()
	phones := l.phones
	l.phones = nil
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Close()
			if p.Audio != nil {
				_ = p.Audio.Close()
			}
		}()
	}
	wg.Wait()
	_ = l.Server.Close()
}
