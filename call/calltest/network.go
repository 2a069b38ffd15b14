package calltest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/transport/v4/vnet"
	"github.com/pion/webrtc/v4"
)

// Network is a simulated IP network (pion's vnet) for phones whose calls
// must cross a link that can be cut, restored or made lossy, the way a
// phone moves between Wi-Fi and mobile data. Its addresses are in
// 198.51.100.0/24 (TEST-NET-2); nothing leaves the process.
type Network struct {
	router *vnet.Router
	cut    atomic.Bool
	loss   atomic.Uint32 // percent

	mu    sync.Mutex
	rng   *rand.Rand
	next  int
	cuts  map[string]bool // hosts cut off, by IP
	ncuts atomic.Int32    // len(cuts), read without the lock
}

// NetworkConfig shapes the simulated link.
type NetworkConfig struct {
	// Delay and Jitter are added to every packet by the router.
	Delay, Jitter time.Duration
	// Seed makes loss reproducible.
	Seed uint64
}

// ICETimeouts are short ICE timers for tests on a Network: disconnected,
// failed, keepalive.
var ICETimeouts = [3]time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 100 * time.Millisecond}

// NewNetwork starts a simulated network.
func NewNetwork(cfg NetworkConfig) (*Network, error) {
	r, err := vnet.NewRouter(&vnet.RouterConfig{
		CIDR: "198.51.100.0/24", MinDelay: cfg.Delay, MaxJitter: cfg.Jitter,
		LoggerFactory: logging.NewDefaultLoggerFactory(), // required by vnet
	})
	if err != nil {
		return nil, fmt.Errorf("calltest: router: %w", err)
	}
	n := &Network{router: r, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6e6574))}
	r.AddChunkFilter(n.pass)
	if err := r.Start(); err != nil {
		return nil, fmt.Errorf("calltest: router: %w", err)
	}
	return n, nil
}

func (n *Network) pass(c vnet.Chunk) bool {
	if n.cut.Load() {
		return false
	}
	if n.ncuts.Load() > 0 {
		n.mu.Lock()
		cut := n.cuts[hostOf(c.SourceAddr())] || n.cuts[hostOf(c.DestinationAddr())]
		n.mu.Unlock()
		if cut {
			return false
		}
	}
	if l := n.loss.Load(); l > 0 {
		n.mu.Lock()
		drop := n.rng.IntN(100) < int(l)
		n.mu.Unlock()
		return !drop
	}
	return true
}

// Cut drops every packet while on is true (a dead link), and restores the
// link when it is false.
func (n *Network) Cut(on bool) { n.cut.Store(on) }

// SetLoss drops pct percent of packets at random.
func (n *Network) SetLoss(pct int) { n.loss.Store(uint32(max(0, min(pct, 100)))) }

func hostOf(a net.Addr) string {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.IP.String()
	}
	if a == nil {
		return ""
	}
	h, _, _ := net.SplitHostPort(a.String())
	return h
}

// SettingEngine returns a SettingEngine for one more host on the network,
// with short ICE timers (ICETimeouts).
func (n *Network) SettingEngine() (*webrtc.SettingEngine, error) {
	h, err := n.Host()
	if err != nil {
		return nil, err
	}
	return h.SettingEngine, nil
}

// Host is one host on a Network: a phone whose SettingEngine it is
// sends and receives from its IP.
type Host struct {
	IP            string
	SettingEngine *webrtc.SettingEngine
	n             *Network
}

// Host adds a host to the network, with short ICE timers (ICETimeouts).
func (n *Network) Host() (*Host, error) {
	n.mu.Lock()
	n.next++
	ip := fmt.Sprintf("198.51.100.%d", n.next)
	n.mu.Unlock()
	vn, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
	if err != nil {
		return nil, fmt.Errorf("calltest: host %s: %w", ip, err)
	}
	if err := n.router.AddNet(vn); err != nil {
		return nil, fmt.Errorf("calltest: host %s: %w", ip, err)
	}
	se := &webrtc.SettingEngine{}
	se.SetNet(vn)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(ICETimeouts[0], ICETimeouts[1], ICETimeouts[2])
	return &Host{IP: ip, SettingEngine: se, n: n}, nil
}

// Cut drops every packet from or to this host while on is true (its
// link is dead; the other hosts still reach each other), and restores it
// when it is false.
func (h *Host) Cut(on bool) {
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cuts == nil {
		n.cuts = make(map[string]bool)
	}
	if on {
		n.cuts[h.IP] = true
	} else {
		delete(n.cuts, h.IP)
	}
	n.ncuts.Store(int32(len(n.cuts)))
}

// Close stops the network.
func (n *Network) Close() error { return n.router.Stop() }
