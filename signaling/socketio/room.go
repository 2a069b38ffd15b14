package socketio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/dialtone-dev/dialtone/signaling"
)

// DefaultPeer is the user ID the other member of a room appears as.
const DefaultPeer = "peer"

// RoomConfig configures the Room made by JoinRoom. Every zero field
// except Room takes the default given beside it.
type RoomConfig struct {
	// Conn configures the Socket.IO connection (its Namespace is the
	// app's, "/" by default).
	Conn ConnConfig
	// Room is the name of the room to join. Required.
	Room string
	// User is this phone's user ID (Ready.User, call.Phone.User). Default:
	// the socket's ID.
	User string
	// Peer is the user ID the room's other member appears as: the callee
	// to pass to call.Phone.Dial and the caller of incoming calls.
	// Default DefaultPeer.
	Peer string
	// Events names the server's events.
	Events Events
	// Shape is the shape of the payloads the server takes.
	Shape Shape
	// ICEServers is handed to the phone as the relay configuration (in
	// `ready` and in answer to its `relay`): room-relay servers do not
	// give one. Default none (host and, with a STUN server in
	// call.Config.ICEServers, reflexive candidates).
	ICEServers []signaling.ICEServer
	// Backoff schedules reconnection attempts.
	Backoff signaling.Backoff
	// NoReconnect makes a dropped connection terminal (StateClosed).
	NoReconnect bool
}

func (c RoomConfig) withDefaults() RoomConfig {
	c.Conn = c.Conn.withDefaults()
	if c.Peer == "" {
		c.Peer = DefaultPeer
	}
	c.Events = c.Events.withDefaults()
	c.Shape = c.Shape.withDefaults()
	return c
}

// Room is the room-relay mode: a signaling.Transport that joins a room on
// a Socket.IO server of the common WebRTC-app shape (join a room by name;
// the server relays offer, answer, candidate and leave events to the
// others in the room) and translates between those events and dialtone's
// call protocol, so that call.Phone places and answers calls with the
// app's browser pages unchanged. The room's other member is one peer,
// RoomConfig.Peer, and there is one call at a time:
//
//   - Dial(peer): the call is accepted as soon as the room has another
//     member (a Joined event, now or later: the ring timeout bounds the
//     wait); the phone then offers, as a dialtone caller does, and the
//     page answers. Hang-up sends Leave (and joins again, so the phone
//     stays reachable in the room).
//   - An Offer while idle rings the phone as an incoming call from peer,
//     the offer held as its first signal; Call.Accept answers it.
//     Declining or hanging up sends Leave.
//   - Leave from the server ends the call: hung up once answered,
//     cancelled while ringing.
//   - Candidates both ways, and descriptions during the call
//     (renegotiation, ICE restarts), pass through.
//
// A room-relay server has no ringing, no busy, no offline: those are
// dialtone's.
//
// After a dropped connection Room reconnects with backoff and joins the
// room again, reporting StateDown and StateUp like the WebSocket client.
// The server has told the peer that we left, so a call answered or
// ringing when the connection dropped ends at once; a call still waiting
// for the peer goes on waiting.
type Room struct {
	cfg      RoomConfig
	link     link
	user     string // set by the first connection, then fixed
	incoming *mailbox.Mailbox[signaling.Message]

	mu       sync.Mutex
	call     string // the current call's ID, "" when idle
	outgoing bool
	accepted bool // the call was accepted (by either side)
	peerHere bool // the room has another member
}

var _ signaling.Transport = (*Room)(nil)

// JoinRoom connects to the Socket.IO server at rawURL and joins the room
// RoomConfig.Room. ctx bounds only this first connection, which is not
// retried.
func JoinRoom(ctx context.Context, rawURL string, cfg RoomConfig) (*Room, error) {
	if cfg.Room == "" {
		return nil, errors.New("socketio: RoomConfig.Room is required")
	}
	cfg = cfg.withDefaults()
	r := &Room{cfg: cfg, user: cfg.User, incoming: mailbox.New[signaling.Message]()}
	r.link = link{
		url: rawURL, cfg: cfg.Conn, backoff: cfg.Backoff, noReconnect: cfg.NoReconnect,
		setup: r.join,
		handle: func(e Event) {
			if err := r.event(e); err != nil {
				r.cfg.Conn.Logger.Warn("socketio: room event ignored", "event", e.Name, "err", err)
			}
		},
		down: r.dropped,
	}
	if err := r.link.start(ctx, r.incoming.Close); err != nil {
		return nil, err
	}
	return r, nil
}

// join joins the room on a new connection and delivers `ready`.
func (r *Room) join(ctx context.Context, c *Conn) error {
	if r.user == "" {
		r.user = c.ID() // the first connection's: the link is not running yet
	}
	if err := c.Emit(ctx, r.cfg.Events.Join, r.cfg.Room); err != nil {
		return err
	}
	ready, err := signaling.NewMessage(signaling.TypeReady, r.user, "", r.Ready())
	if err != nil {
		return err
	}
	r.incoming.Put(ready)
	return nil
}

// Peer returns the user ID the room's other member appears as.
func (r *Room) Peer() string { return r.cfg.Peer }

// Ready implements signaling.Transport.
func (r *Room) Ready() signaling.Ready {
	return signaling.Ready{User: r.user, Protocol: 1, ICEServers: r.cfg.ICEServers}
}

// Incoming implements signaling.Transport.
func (r *Room) Incoming() <-chan signaling.Message { return r.incoming.Out() }

// Status implements signaling.Transport.
func (r *Room) Status() <-chan signaling.Status { return r.link.status.C() }

// Close implements signaling.Transport.
func (r *Room) Close() error {
	r.link.close()
	r.incoming.Abandon()
	return nil
}

// fromPeer queues a message of the current call as if the peer sent it.
func (r *Room) fromPeer(t signaling.Type, call string, data any) {
	m, err := signaling.NewMessage(t, r.user, call, data)
	if err != nil {
		r.cfg.Conn.Logger.Warn("socketio: cannot build message", "type", t, "err", err)
		return
	}
	m.From = r.cfg.Peer
	r.incoming.Put(m)
}

// Send implements signaling.Transport: it turns the phone's message into
// the room's events (or answers it itself).
func (r *Room) Send(ctx context.Context, m signaling.Message) error {
	ev := r.cfg.Events
	switch m.Type {
	case signaling.TypeRelay:
		m2, err := signaling.NewMessage(signaling.TypeRelayConfig, r.user, m.Call,
			signaling.RelayConfig{ICEServers: r.cfg.ICEServers})
		if err == nil {
			r.incoming.Put(m2)
		}
		return err
	case signaling.TypeInvite:
		if m.To != r.cfg.Peer {
			r.fromUser(signaling.TypeOffline, m.To, m.Call)
			return nil
		}
		r.mu.Lock()
		if r.call != "" {
			r.mu.Unlock()
			r.fromPeer(signaling.TypeBusy, m.Call, nil)
			return nil
		}
		r.call, r.outgoing, r.accepted = m.Call, true, r.peerHere
		accept := r.accepted
		r.mu.Unlock()
		r.fromPeer(signaling.TypeWaiting, m.Call, nil)
		if accept {
			r.fromPeer(signaling.TypeAccept, m.Call, nil)
		}
		return nil
	case signaling.TypeRinging:
		return nil
	case signaling.TypeAccept:
		r.mu.Lock()
		if r.call == m.Call {
			r.accepted = true
		}
		r.mu.Unlock()
		return nil
	case signaling.TypeSignal:
		if !r.current(m.Call) {
			return nil
		}
		return r.signal(ctx, m)
	case signaling.TypeHangup, signaling.TypeCancel, signaling.TypeDecline, signaling.TypeBusy:
		r.mu.Lock()
		ours := r.call != "" && r.call == m.Call
		if ours {
			r.call = ""
		}
		r.mu.Unlock()
		if !ours {
			return nil
		}
		if err := r.link.emit(ctx, ev.Leave, r.cfg.Room); err != nil {
			return err
		}
		// The server took us out of the room; the phone stays reachable.
		return r.link.emit(ctx, ev.Join, r.cfg.Room)
	}
	return fmt.Errorf("%w: %s", ErrUnsupported, m.Type)
}

// fromUser queues a message from user, not the peer (offline for a
// callee that is not the room's peer).
func (r *Room) fromUser(t signaling.Type, user, call string) {
	r.incoming.Put(signaling.Message{Type: t, From: user, To: r.user, Call: call})
}

func (r *Room) current(call string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return call != "" && r.call == call
}

// signal emits a dialtone signal as an offer, answer or candidate event.
func (r *Room) signal(ctx context.Context, m signaling.Message) error {
	var sig struct {
		Description *description `json:"description"`
		Candidate   *candidate   `json:"candidate"`
	}
	if err := m.Unmarshal(&sig); err != nil {
		return err
	}
	sh, ev := r.cfg.Shape, r.cfg.Events
	switch {
	case sig.Description != nil:
		b, err := json.Marshal(sig.Description)
		if err != nil {
			return err
		}
		switch sig.Description.Type {
		case "offer":
			return r.link.emit(ctx, ev.Offer, sh.args(r.cfg.Room, sh.DescriptionKey, b)...)
		case "answer", "pranswer":
			return r.link.emit(ctx, ev.Answer, sh.args(r.cfg.Room, sh.DescriptionKey, b)...)
		}
		// A rollback stays on this side.
		return nil
	case sig.Candidate != nil:
		b, err := json.Marshal(sig.Candidate)
		if err != nil {
			return err
		}
		return r.link.emit(ctx, ev.Candidate, sh.args(r.cfg.Room, sh.CandidateKey, b)...)
	}
	return nil
}

// dropped ends what the server ended for the peer: the peer left, or our
// connection dropped and the server told the peer that we left.
func (r *Room) dropped() {
	r.mu.Lock()
	r.peerHere = false
	call, outgoing, accepted := r.call, r.outgoing, r.accepted
	if call != "" && (accepted || !outgoing) {
		r.call = ""
	}
	r.mu.Unlock()
	switch {
	case call == "":
	case accepted:
		r.fromPeer(signaling.TypeHangup, call, signaling.Hangup{Reason: "hangup"})
	case !outgoing:
		r.fromPeer(signaling.TypeCancel, call, signaling.Hangup{Reason: "cancelled"})
	}
}

// signalData is the data of a dialtone signal.
type signalData struct {
	Description *description `json:"description,omitempty"`
	Candidate   *candidate   `json:"candidate,omitempty"`
}

func (r *Room) event(e Event) error {
	ev, sh := r.cfg.Events, r.cfg.Shape
	switch e.Name {
	case ev.Joined:
		r.mu.Lock()
		r.peerHere = true
		call, accept := r.call, r.call != "" && r.outgoing && !r.accepted
		if accept {
			r.accepted = true
		}
		r.mu.Unlock()
		if accept {
			r.fromPeer(signaling.TypeAccept, call, nil)
		}
	case ev.Offer, ev.Answer:
		kind := "offer"
		if e.Name == ev.Answer && ev.Answer != ev.Offer {
			kind = "answer"
		}
		d, err := sh.findDescription(e.Args, kind)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.peerHere = true
		call, invite := r.call, false
		if call == "" && d.Type == "offer" {
			call, invite = newCallID(), true
			r.call, r.outgoing, r.accepted = call, false, false
		}
		r.mu.Unlock()
		if call == "" {
			return fmt.Errorf("%w: %s outside a call", ErrBadPayload, d.Type)
		}
		if invite {
			r.fromPeer(signaling.TypeInvite, call, signaling.Invite{DisplayName: r.cfg.Peer})
		}
		r.fromPeer(signaling.TypeSignal, call, signalData{Description: &d})
	case ev.Candidate:
		c, err := sh.findCandidate(e.Args)
		if err != nil {
			return err
		}
		if c.Candidate == "" {
			return nil // the end of the peer's candidates
		}
		r.mu.Lock()
		call := r.call
		r.mu.Unlock()
		if call == "" {
			return fmt.Errorf("%w: candidate outside a call", ErrBadPayload)
		}
		r.fromPeer(signaling.TypeSignal, call, signalData{Candidate: &c})
	case ev.Leave:
		r.dropped()
	default:
		r.cfg.Conn.Logger.Debug("socketio: event of no meaning to a room ignored", "event", e.Name)
	}
	return nil
}

func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
