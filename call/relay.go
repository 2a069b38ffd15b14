package call

import (
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
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
