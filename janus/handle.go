package janus

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/pion/webrtc/v4"
)

// EventKind says what a handle Event reports.
type EventKind int

// Kinds of handle events.
const (
	// EventPlugin: a message from the plugin (Data, and JSEP if any) that
	// is no reply to a request of ours.
	EventPlugin EventKind = iota + 1
	// EventTrickle: a candidate of Janus's (Candidate), or the end of its
	// candidates (Candidate nil).
	EventTrickle
	// EventWebRTCUp: the PeerConnection is up (DTLS done).
	EventWebRTCUp
	// EventMedia: Janus started or stopped receiving our media (Receiving).
	EventMedia
	// EventSlowLink: Janus sees loss on the link (Uplink, Lost).
	EventSlowLink
	// EventHangup: Janus closed the PeerConnection (Reason).
	EventHangup
	// EventDisconnected: the API connection dropped; the session
	// reconnects and claims itself back (EventReclaimed) or ends.
	EventDisconnected
	// EventReclaimed: the API connection dropped and the session was
	// claimed back on a new one; events in between are lost.
	EventReclaimed
)

// Event is something Janus told a handle without being asked.
type Event struct {
	Kind      EventKind
	Data      json.RawMessage
	JSEP      *webrtc.SessionDescription
	Candidate *webrtc.ICECandidateInit
	Receiving bool
	Uplink    bool
	Lost      int
	Reason    string
}

// Reply is a plugin's reply to a message.
type Reply struct {
	// Data is the plugin's payload ("plugindata.data").
	Data json.RawMessage
	// JSEP is the session description that came with it, if any.
	JSEP *webrtc.SessionDescription
}

// sink receives a handle's events on the session's goroutine; it must not
// block.
type sink interface {
	event(Event)
	// end: no event follows; err says why.
	end(err error)
	// abandon drops what the reader has not read (the session is closed).
	abandon()
}

// Handle is a handle attached to a plugin within a session.
type Handle struct {
	s      *Session
	id     uint64
	plugin string
	sink   sink
	events *mailbox.Mailbox[Event] // nil unless sink is the handle's own
	ended  bool                    // owned by the session's goroutine
}

// Attach attaches a handle to plugin (such as "janus.plugin.audiobridge").
// Its unsolicited events are read from Events.
func (s *Session) Attach(ctx context.Context, plugin string) (*Handle, error) {
	mb := mailbox.New[Event]()
	h, err := s.attach(ctx, plugin, mailboxSink{mb})
	if err != nil {
		mb.Abandon()
		return nil, err
	}
	h.events = mb
	return h, nil
}

func (s *Session) attach(ctx context.Context, plugin string, k sink) (*Handle, error) {
	h := &Handle{s: s, plugin: plugin, sink: k}
	// The handle is filed by the reply callback, on the session's
	// goroutine, before any event for it can be dispatched.
	ch := make(chan error, 1)
	p := &pending{msg: map[string]any{"janus": "attach", "plugin": plugin}, done: func(m *message, err error) {
		if err == nil && m.Data.ID == 0 {
			err = fmt.Errorf("%w: attach without a handle ID", ErrProtocol)
		}
		if err == nil {
			h.id = m.Data.ID
			s.handles[h.id] = h
		}
		ch <- err
	}}
	if !s.post(func() { s.send(p) }) {
		return nil, s.endErr()
	}
	select {
	case err := <-ch:
		if err != nil {
			return nil, fmt.Errorf("janus: attach %s: %w", plugin, err)
		}
		return h, nil
	case <-ctx.Done():
		// A late success leaves a handle on the server that the session's
		// destruction detaches.
		return nil, ctx.Err()
	case <-s.exited:
		return nil, s.endErr()
	}
}

// ID is the handle's ID on the server.
func (h *Handle) ID() uint64 { return h.id }

// Events delivers the handle's unsolicited events in order. It is closed
// when the handle is detached or its session ends; Session.Err says why in
// the latter case.
func (h *Handle) Events() <-chan Event {
	if h.events == nil {
		return nil
	}
	return h.events.Out()
}

// Message sends body (and jsep, if not nil) to the plugin and returns its
// reply: the synchronous "success" or, for asynchronous requests, the
// event that follows Janus's "ack". A reply carrying the plugin's
// error_code is returned as an *Error.
func (h *Handle) Message(ctx context.Context, body any, jsep *webrtc.SessionDescription) (*Reply, error) {
	m, err := h.s.call(ctx, h.messageMsg(body, jsep), true)
	if err != nil {
		return nil, err
	}
	return replyOf(m)
}

// messageAsync sends like Message and calls done with the outcome on the
// session's goroutine; done must not block.
func (h *Handle) messageAsync(body any, jsep *webrtc.SessionDescription, done func(*Reply, error)) {
	p := &pending{msg: h.messageMsg(body, jsep), async: true, done: func(m *message, err error) {
		if err != nil {
			done(nil, err)
			return
		}
		done(replyOf(m))
	}}
	if !h.s.post(func() { h.s.send(p) }) {
		done(nil, h.s.endErr())
	}
}

func (h *Handle) messageMsg(body any, jsep *webrtc.SessionDescription) map[string]any {
	msg := map[string]any{"janus": "message", "handle_id": h.id, "body": body}
	if jsep != nil {
		msg["jsep"] = jsep
	}
	return msg
}

// replyOf extracts the plugin's reply and its error, if any.
func replyOf(m *message) (*Reply, error) {
	r := &Reply{Data: m.pluginData(), JSEP: m.JSEP}
	if r.Data == nil {
		return nil, fmt.Errorf("%w: %q without plugin data", ErrProtocol, m.Janus)
	}
	var pe struct {
		Code   int    `json:"error_code"`
		Reason string `json:"error"`
	}
	if err := json.Unmarshal(r.Data, &pe); err != nil {
		return nil, fmt.Errorf("%w: plugin data: %v", ErrProtocol, err)
	}
	if pe.Code != 0 {
		return r, &Error{Code: pe.Code, Reason: pe.Reason}
	}
	return r, nil
}

// Trickle sends one local candidate to Janus; nil says the candidates are
// complete.
func (h *Handle) Trickle(ctx context.Context, c *webrtc.ICECandidateInit) error {
	_, err := h.s.call(ctx, h.trickleMsg(c), false)
	return err
}

// trickleAsync sends like Trickle without waiting; errors are logged.
func (h *Handle) trickleAsync(c *webrtc.ICECandidateInit) {
	p := &pending{msg: h.trickleMsg(c), done: func(_ *message, err error) {
		if err != nil {
			h.s.log.Debug("janus: trickle", "handle", h.id, "err", err)
		}
	}}
	h.s.post(func() { h.s.send(p) })
}

func (h *Handle) trickleMsg(c *webrtc.ICECandidateInit) map[string]any {
	msg := map[string]any{"janus": "trickle", "handle_id": h.id}
	if c == nil {
		msg["candidate"] = trickleCandidate{Completed: true}
	} else {
		msg["candidate"] = trickleCandidate{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}
	}
	return msg
}

// Hangup asks Janus to close the handle's PeerConnection.
func (h *Handle) Hangup(ctx context.Context) error {
	_, err := h.s.call(ctx, map[string]any{"janus": "hangup", "handle_id": h.id}, false)
	return err
}

// Detach detaches the handle from its plugin (which leaves any room) and
// ends its events; those not yet read are dropped.
func (h *Handle) Detach(ctx context.Context) error {
	_, err := h.s.call(ctx, map[string]any{"janus": "detach", "handle_id": h.id}, false)
	h.s.post(func() {
		h.end(ErrDetached)
		delete(h.s.handles, h.id)
	})
	h.sink.abandon()
	return err
}

// receive turns a message addressed to the handle into an event. Called on
// the session's goroutine.
func (h *Handle) receive(m *message) {
	if h.ended {
		return
	}
	switch m.Janus {
	case "event":
		if m.PluginData == nil {
			return
		}
		h.sink.event(Event{Kind: EventPlugin, Data: m.pluginData(), JSEP: m.JSEP})
	case "trickle":
		e := Event{Kind: EventTrickle}
		if c, ok := m.Candidate.candidateInit(); ok {
			e.Candidate = &c
		}
		h.sink.event(e)
	case "webrtcup":
		h.sink.event(Event{Kind: EventWebRTCUp})
	case "media":
		h.sink.event(Event{Kind: EventMedia, Receiving: m.Receiving != nil && *m.Receiving})
	case "slowlink":
		h.sink.event(Event{Kind: EventSlowLink, Uplink: m.Uplink != nil && *m.Uplink, Lost: m.Lost})
	case "hangup":
		h.sink.event(Event{Kind: EventHangup, Reason: m.Reason})
	case "detached":
		h.end(ErrDetached)
		delete(h.s.handles, h.id)
	}
}

func (h *Handle) disconnected() {
	if !h.ended {
		h.sink.event(Event{Kind: EventDisconnected})
	}
}

func (h *Handle) reclaimed() {
	if !h.ended {
		h.sink.event(Event{Kind: EventReclaimed})
	}
}

func (h *Handle) end(err error) {
	if h.ended {
		return
	}
	h.ended = true
	h.sink.end(err)
}

// mailboxSink queues a plain handle's events for Events.
type mailboxSink struct{ mb *mailbox.Mailbox[Event] }

func (k mailboxSink) event(e Event) { k.mb.Put(e) }
func (k mailboxSink) end(error)     { k.mb.Close() }
func (k mailboxSink) abandon()      { k.mb.Abandon() }
