package call

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

// relayState is the phone's latest relay (STUN/TURN) configuration.
type relayState struct {
	servers  []signaling.ICEServer
	received time.Time
	ttl      time.Duration // 0: no expiry
	asked    time.Time     // when the last `relay` request went out
}

// stale reports TURN credentials past half their lifetime: a call that
// may last a while gets fresh ones.
func (r relayState) stale(now time.Time) bool {
	return r.ttl > 0 && now.Sub(r.received) > r.ttl/2
}

func (p *Phone) setRelay(servers []signaling.ICEServer, ttlSeconds int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.relay.servers = servers
	p.relay.received = time.Now()
	p.relay.ttl = time.Duration(ttlSeconds) * time.Second
	p.relay.asked = time.Time{}
}

// relayStaleAt returns when the relay credentials turn stale; false when
// they do not expire.
func (p *Phone) relayStaleAt() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.relay.received.Add(p.relay.ttl / 2), p.relay.ttl > 0
}

func (p *Phone) relayServers() []signaling.ICEServer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.relay.servers
}

// askRelay sends a `relay` request unless one is already out, and reports
// whether the current configuration is stale (the caller should wait for
// the answer, with a timeout).
func (p *Phone) askRelay() bool {
	now := time.Now()
	p.mu.Lock()
	stale := p.relay.stale(now)
	ask := stale && now.Sub(p.relay.asked) > p.cfg.RelayTimeout
	if ask {
		p.relay.asked = now
	}
	p.mu.Unlock()
	if ask {
		p.post(signaling.Message{Type: signaling.TypeRelay})
	}
	return stale
}

// relayStaleIn is how long the relay credentials have before they go
// stale (askRelay then asks for new ones), and false when they do not
// expire.
func (p *Phone) relayStaleIn() (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.relay.ttl <= 0 {
		return 0, false
	}
	// Just past the half-life: stale is strictly beyond it.
	return max(0, time.Until(p.relay.received.Add(p.relay.ttl/2))) + time.Millisecond, true
}

// relayWait is a call's wait for fresh relay credentials; media set-up is
// held back until they arrive or RelayTimeout passes.
type relayWait struct {
	waiting      bool
	startPending bool
	// probeDone is closed when probeRelay's goroutine has returned (nil:
	// none started).
	probeDone chan struct{}
}

// refreshRelay starts waiting for fresh relay credentials if ours are
// stale. The ringing phase usually hides the wait.
func (c *Call) refreshRelay() {
	if c.cfg.ICEServers != nil || !c.phone.askRelay() {
		return
	}
	c.relay.waiting = true
	c.arm(timerRelay, c.cfg.RelayTimeout)
}

func (c *Call) onRelayConfig(signaling.Message) {
	if !c.relay.waiting {
		c.applyRelay()
		return
	}
	c.disarm(timerRelay)
	c.relayReady()
}

func (c *Call) relayTimedOut() {
	if !c.relay.waiting {
		return
	}
	c.log.Warn("no relay config from the server in time; going on with what we have", "timeout", c.cfg.RelayTimeout)
	c.relayReady()
}

func (c *Call) relayReady() {
	c.relay.waiting = false
	if c.relay.startPending {
		c.relay.startPending = false
		if err := c.startMedia(); err != nil {
			c.fail(ReasonError, err, true)
		}
	}
}

// relayCandidates counts the relay candidates pc has gathered, from its
// stats: pion's LocalDescription adds the candidates to the description it
// returns in place, which races with a SetLocalDescription under way on
// the negotiator's goroutine.
func relayCandidates(pc *webrtc.PeerConnection) int {
	n := 0
	for _, s := range pc.GetStats() {
		if c, ok := s.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeLocalCandidate && c.CandidateType == webrtc.ICECandidateTypeRelay {
			n++
		}
	}
	return n
}

// relayProbeTimeout bounds probeRelay: a relay that answers at all does
// so within a round trip or two.
const relayProbeTimeout = 3 * time.Second

// onGathered fails a RelayOnly call at once when ICE gathering ended
// without a relay candidate: no pair can ever form, and waiting for
// ConnectTimeout would only hide why. The relay's own answer (a 401 for a
// wrong secret, silence for an unreachable host) is learned by asking it
// for an allocation ourselves, since pion reports it only in its logs.
func (c *Call) onGathered() {
	if c.media != nil && c.media.relayPending {
		c.applyRelay()
	}
	if !c.cfg.RelayOnly || c.media == nil || c.relay.probeDone != nil || c.State() != Connecting || relayCandidates(c.media.pc) > 0 {
		return
	}
	servers := c.media.iceServers
	done := make(chan struct{})
	c.relay.probeDone = done
	go func() {
		defer close(done)
		c.inbox.Put(evProbed{err: probeRelay(servers, relayProbeTimeout)})
	}()
}

func (c *Call) onProbed(err error) {
	if c.State() != Connecting {
		return
	}
	if err == nil {
		err = errors.New("ICE gathered none, though the relay allocates for us now")
	}
	// fail logs it at warning level.
	c.fail(ReasonRelayFailed, fmt.Errorf("%w: %w", ErrRelay, err), true)
}

// probeRelay asks each TURN server over UDP for an allocation with its
// credentials, each bounded by timeout: nil as soon as one allocates, else
// every refusal or failure, each naming its server (or that there was no
// TURN server over UDP to ask).
func probeRelay(servers []webrtc.ICEServer, timeout time.Duration) error {
	var errs []error
	for _, s := range servers {
		user := s.Username
		pass, _ := s.Credential.(string)
		for _, u := range s.URLs {
			addr, ok := turnUDPAddr(u)
			if !ok {
				continue
			}
			err := allocateOnce(addr, user, pass, timeout)
			if err == nil {
				return nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
		}
	}
	if len(errs) == 0 {
		return errors.New("no TURN server over UDP in the relay configuration")
	}
	return errors.Join(errs...)
}

// allocateOnce makes one TURN allocation on addr and releases it.
func allocateOnce(addr, user, pass string, timeout time.Duration) error {
	conn, err := net.ListenPacket("udp", ":0")
	if err != nil {
		return err
	}
	defer conn.Close()
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr,
		TURNServerAddr: addr,
		Username:       user,
		Password:       pass,
		Conn:           conn,
		LoggerFactory:  pionLogs{log: slog.New(slog.DiscardHandler)},
	})
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		return err
	}
	// Closing the client ends an Allocate still waiting for an answer.
	stop := time.AfterFunc(timeout, func() {
		client.Close()
		_ = conn.Close()
	})
	defer stop.Stop()
	relayed, err := client.Allocate()
	if err != nil {
		return err
	}
	return relayed.Close()
}

// turnUDPAddr returns host:port of a "turn:" URL over UDP.
func turnUDPAddr(u string) (string, bool) {
	rest, ok := strings.CutPrefix(u, "turn:")
	if !ok {
		return "", false
	}
	rest, query, _ := strings.Cut(rest, "?")
	if query != "" && query != "transport=udp" {
		return "", false
	}
	if _, _, err := net.SplitHostPort(rest); err != nil {
		rest = net.JoinHostPort(strings.Trim(rest, "[]"), "3478")
	}
	return rest, true
}

// armRelayRefresh schedules the renewal of the credentials of a live
// call's relay at half their lifetime.
func (c *Call) armRelayRefresh() {
	if c.cfg.ICEServers != nil {
		return
	}
	if at, ok := c.phone.relayStaleAt(); ok {
		c.arm(timerRelayRefresh, max(time.Until(at), time.Millisecond))
	}
}

// refreshLiveRelay asks the server for fresh relay credentials (applyRelay
// takes them when they come) and tries again after RelayTimeout if none
// come.
func (c *Call) refreshLiveRelay() {
	if c.media == nil || c.State() == Ended {
		return
	}
	c.phone.askRelay()
	c.arm(timerRelayRefresh, c.cfg.RelayTimeout)
}

// applyRelay gives a live call's PeerConnection the phone's current relay
// credentials, so that the next ICE gathering allocates with credentials
// that have not expired. A TURN server may refuse to refresh an allocation
// made with credentials that have expired since, and the allocation would
// then die under the call; so when the call's media goes through a relay
// the caller restarts ICE, which makes new allocations on both sides, each
// with its side's current credentials. The callee only keeps its
// credentials fresh: two restarts at once would cross (glare) for nothing.
// Between two refreshes lies half the credentials' lifetime.
func (c *Call) applyRelay() {
	if c.media == nil || c.cfg.ICEServers != nil || c.State() == Ended {
		return
	}
	servers := toWebRTC(c.phone.relayServers())
	if slices.EqualFunc(servers, c.media.iceServers, sameICEServer) {
		return
	}
	// pion swaps the servers under a gathering that is reading them; the
	// next completed gathering (evGathered) applies them instead.
	if c.media.pc.ICEGatheringState() != webrtc.ICEGatheringStateComplete {
		c.media.relayPending = true
		return
	}
	c.media.relayPending = false
	cfg := webrtc.Configuration{ICEServers: servers}
	if c.cfg.RelayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	if err := c.media.pc.SetConfiguration(cfg); err != nil {
		c.log.Warn("cannot apply fresh relay credentials", "err", err)
		return
	}
	c.media.iceServers = servers
	c.armRelayRefresh()
	if c.outgoing && relayed(c.media.pc) {
		c.log.Info("fresh relay credentials: restarting ICE for new allocations")
		c.media.neg.RestartICE()
	}
}

func sameICEServer(a, b webrtc.ICEServer) bool {
	return slices.Equal(a.URLs, b.URLs) && a.Username == b.Username && a.Credential == b.Credential
}

// relayed reports whether pc's selected candidate pair has a relay
// candidate on either side.
func relayed(pc *webrtc.PeerConnection) bool {
	sctp := pc.SCTP()
	if sctp == nil {
		return false
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	return err == nil && pair != nil && pair.Local != nil && pair.Remote != nil &&
		(pair.Local.Typ == webrtc.ICECandidateTypeRelay || pair.Remote.Typ == webrtc.ICECandidateTypeRelay)
}
