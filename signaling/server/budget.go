package server

import (
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/dialtone-dev/dialtone/signaling"
)

// charge takes m (valid, from c's user) out of the user's budget, waiting
// for it up to RateWait; false when m was dropped (answered
// `rate-limited`) or c ended while waiting. It runs on c's reading
// goroutine, which is how a sender over its rate is slowed down: its
// frames wait in the socket.
func (h *hub) charge(c *conn, m signaling.Message) bool {
	if answers(m.Type) && c.lim.useReply(m.To, m.Call) {
		return true // paid for by the invite it answers
	}
	if c.lim.send.Allow() {
		return true // the common case, without Reserve's allocation
	}
	r := c.lim.send.Reserve()
	d := r.Delay()
	if d == 0 {
		return true
	}
	if !r.OK() || d > h.cfg.RateWait {
		r.Cancel()
		h.rejectRate(c, m, "over the user's message rate; message dropped")
		// Answering costs work too: a flooder gets at most one answer per
		// token's worth of time.
		if lim := c.lim.send.Limit(); lim > 0 && lim != rate.Inf {
			wait(c, min(time.Duration(float64(time.Second)/float64(lim)), h.cfg.RateWait))
		}
		return false
	}
	if !wait(c, d) {
		r.Cancel()
		return false
	}
	return true
}

// wait waits d or until c ends; false if c ended.
func wait(c *conn, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.done:
		return false
	}
}

// answers reports whether t answers an invite: the messages an invite's
// credits pay for.
func answers(t signaling.Type) bool {
	switch t {
	case signaling.TypeRinging, signaling.TypeAccept, signaling.TypeDecline, signaling.TypeBusy:
		return true
	}
	return false
}

// inboundOK takes a routed message for dst out of dst's inbound budget;
// false when dst may not take it (over its inbound rate, or others'
// messages already fill 3/4 of its queue, the rest being kept for the
// server's own messages).
func (h *hub) inboundOK(dst *conn) bool {
	if dst.queued.Load() >= int64(h.cfg.SendQueue*3/4) {
		return false
	}
	return dst.lim.recv.Allow()
}

// rejectRate answers c's message m `rate-limited` and keeps the conn: no
// strike, the sender did nothing wrong but send too much.
func (h *hub) rejectRate(c *conn, m signaling.Message, text string) {
	retry := time.Second
	if lim := c.lim.send.Limit(); lim > 0 && lim != rate.Inf {
		retry = max(time.Duration(float64(time.Second)/float64(lim)), 100*time.Millisecond)
	}
	e, _ := signaling.NewMessage(signaling.TypeError, c.user, m.Call, signaling.RateLimited{
		Error: signaling.Error{Code: signaling.CodeRateLimited, Message: text, Rejected: m.Type},
		Seq:   c.seq, RetryAfter: int(retry / time.Millisecond),
	})
	h.mu.Lock()
	h.stats.Rejected++
	h.sendLocked(c, e)
	h.mu.Unlock()
	h.metrics.errorInc(signaling.CodeRateLimited)
}

// watchExpiry ends c when its credentials expire.
func (h *hub) watchExpiry(c *conn) {
	if c.expires.IsZero() {
		return
	}
	c.expiry = time.AfterFunc(time.Until(c.expires), func() {
		h.endUser(c, signaling.CodeTokenExpired, "the connection's credentials expired")
	})
}

// endUser ends c with code (token-expired, revoked) and takes it out of
// routing.
func (h *hub) endUser(c *conn, code, text string) {
	h.mu.Lock()
	if h.users[c.user] == c {
		delete(h.users, c.user)
	}
	h.mu.Unlock()
	if c.end(code, text) {
		h.metrics.errorInc(code)
		h.log.Info("signaling: connection ended", "user", c.user, "conn", c.id, "code", code)
	}
}

// Revoke ends every connection of user on this node (error `revoked`,
// close code 4003) and returns how many it ended. Its clients reconnect,
// and the Authenticator decides whether they may: revoke the user's
// credentials there first (e.g. TokenAuth.Check). In a cluster, call it on
// every node.
func (s *Server) Revoke(user string) int {
	s.hub.mu.Lock()
	var mine []*conn
	for c := range s.hub.live {
		if c.user == user {
			mine = append(mine, c)
		}
	}
	s.hub.mu.Unlock()
	for _, c := range mine {
		s.hub.endUser(c, signaling.CodeRevoked, fmt.Sprintf("the credentials of %s were revoked", user))
	}
	return len(mine)
}
