package signaling

import (
	"context"
	"time"

	"github.com/gorilla/websocket"
)

// A server drops a message over its rate limit and answers `rate-limited`
// with the frame's number on the connection (RateLimited.Seq). The Client
// remembers the last sentLogSize messages it wrote on the current socket
// to send such a message again.
const (
	sentLogSize = 128
	maxResends  = 5
	maxRetry    = 30 * time.Second
)

// sentLog is the tail of the messages written on one socket, by frame
// number. The Client's wmu guards it.
type sentLog struct {
	ws   *websocket.Conn
	n    uint64 // frames written on ws
	msgs [sentLogSize]sentMsg
}

type sentMsg struct {
	m     Message
	tries int
	at    time.Time // when it was written
}

// dropResendWindow: the call-control messages written on a socket this
// long before its drop was noticed are sent again once the client has
// reconnected. A message written to a socket whose server has just died
// is lost without an error (the write fills the kernel's buffer; the
// reset comes later), so a hang-up made as a node dies would never
// arrive. Only messages a phone ignores when it gets them twice are sent
// again (resendOnDrop).
const dropResendWindow = time.Second

// resendOnDrop reports whether a message of type t may be sent again
// after a drop: each of these only moves a call to a state the receiver
// checks for first (a second `hangup` finds the call ended, a second
// `accept` finds it connecting).
func resendOnDrop(t Type) bool {
	switch t {
	case TypeRinging, TypeAccept, TypeDecline, TypeBusy, TypeCancel, TypeHangup:
		return true
	}
	return false
}

// add records m as frame n+1 on ws (a new socket starts at 1).
func (l *sentLog) add(ws *websocket.Conn, m Message, tries int) {
	if l.ws != ws {
		*l = sentLog{ws: ws}
	}
	l.n++
	l.msgs[l.n%sentLogSize] = sentMsg{m: m, tries: tries, at: time.Now()}
}

// since returns, in order, the messages written on ws at or after t that
// resendOnDrop allows sending again.
func (l *sentLog) since(ws *websocket.Conn, t time.Time) []Message {
	if l.ws != ws {
		return nil
	}
	var out []Message
	for seq := l.n - min(l.n, sentLogSize-1); seq <= l.n; seq++ {
		if seq == 0 {
			continue
		}
		sm := l.msgs[seq%sentLogSize]
		if !sm.at.Before(t) && resendOnDrop(sm.m.Type) {
			out = append(out, sm.m)
		}
	}
	return out
}

// get returns frame seq of ws, if still remembered.
func (l *sentLog) get(ws *websocket.Conn, seq uint64) (sentMsg, bool) {
	if l.ws != ws || seq == 0 || seq > l.n || l.n-seq >= sentLogSize {
		return sentMsg{}, false
	}
	return l.msgs[seq%sentLogSize], true
}

// rateLimited handles an `error` received on ws: when it is a
// rate-limited answer naming a frame this client wrote, that message is
// sent again after the server's delay (doubled with each try), up to
// maxResends times.
func (c *Client) rateLimited(ws *websocket.Conn, m Message) {
	var e RateLimited
	if m.Unmarshal(&e) != nil || e.Code != CodeRateLimited || e.Seq == 0 {
		return
	}
	c.wmu.Lock()
	sm, ok := c.sent.get(ws, e.Seq)
	c.wmu.Unlock()
	if !ok || sm.tries >= maxResends {
		c.log.Warn("signaling: message dropped by the server's rate limit", "type", e.Rejected, "call", m.Call)
		return
	}
	delay := min(time.Duration(e.RetryAfter)*time.Millisecond<<sm.tries, maxRetry)
	delay = max(delay, 10*time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.ctx.Err() != nil {
		return
	}
	if c.resends == nil {
		c.resends = make(map[*time.Timer]struct{})
	}
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		c.mu.Lock()
		_, live := c.resends[t]
		delete(c.resends, t)
		c.mu.Unlock()
		if !live {
			return
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.WriteTimeout)
		defer cancel()
		if err := c.send(ctx, sm.m, sm.tries+1); err != nil {
			c.log.Info("signaling: re-send after rate limit failed", "type", sm.m.Type, "call", sm.m.Call, "err", err)
		}
	})
	c.resends[t] = struct{}{}
}
