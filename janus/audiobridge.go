package janus

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/dialtone-dev/dialtone/negotiation"
	"github.com/pion/webrtc/v4"
)

// AudioBridgePlugin is the AudioBridge plugin's package name.
const AudioBridgePlugin = "janus.plugin.audiobridge"

// DefaultPrebuffering is the default_prebuffering of the rooms Create makes
// when RoomOptions.Prebuffering is zero: how many packets of a participant
// the mixer queues before it mixes them. Every packet queued is a frame of
// delay between a member's mouth and the others' ears: Janus's own default,
// 6, holds four 20 ms frames more than 2 (call.BenchmarkJanusRoom measures
// both; docs/PERFORMANCE.md). A link with more jitter than a couple of
// frames wants more.
const DefaultPrebuffering = 2

// RoomOptions are the settings of a room Create makes. Zero values leave
// Janus's defaults, except Prebuffering.
type RoomOptions struct {
	// Room is the room's ID; zero lets Janus pick one.
	Room uint64
	// Description is the room's name in Janus's lists.
	Description string
	// Secret is needed to destroy the room and to kick participants.
	Secret string
	// Pin is needed to join the room.
	Pin string
	// Private rooms are left out of Janus's room lists.
	Private bool
	// SamplingRate is the mixer's rate in Hz (8000, 16000, 24000 or 48000).
	// Zero: Janus's default, 16000.
	SamplingRate int
	// TalkingEvents makes Janus tell every participant who starts and stops
	// talking (Janus's audiolevel_event). Janus computes it from the RFC
	// 6464 audio level each participant puts on its RTP.
	TalkingEvents bool
	// AudioActivePackets is how many packets Janus averages the level over
	// before deciding talking or not (Janus's default 100, 2 s).
	AudioActivePackets int
	// AudioLevelAverage is the average level, in -dBov (0 loudest, 127
	// silence), under which a participant counts as talking (Janus's
	// default 25).
	AudioLevelAverage int
	// Prebuffering is how many packets of each participant the mixer queues
	// before mixing (Janus's default_prebuffering). Zero means
	// DefaultPrebuffering; negative leaves Janus's default (6).
	Prebuffering int
}

// JoinOptions are a participant's settings when it joins.
type JoinOptions struct {
	// ID is the participant's ID in the room; zero lets Janus pick one.
	ID uint64
	// Display is the name other participants see.
	Display string
	// Pin is the room's PIN, if it has one.
	Pin string
	// Muted joins muted.
	Muted bool
}

// Participant is one member of an AudioBridge room as Janus reports it.
type Participant struct {
	ID      uint64 `json:"id"`
	Display string `json:"display"`
	// Muted: the mixer ignores the participant's audio.
	Muted bool `json:"muted"`
	// Setup: the participant's PeerConnection is up.
	Setup bool `json:"setup"`
	// Talking is reported only in rooms with TalkingEvents.
	Talking bool `json:"talking"`
}

// Joined is the outcome of a join.
type Joined struct {
	Room uint64
	// ID is this participant's ID in the room.
	ID uint64
	// Participants are the others already there.
	Participants []Participant
}

// BridgeEventKind says what a BridgeEvent reports.
type BridgeEventKind int

// Kinds of AudioBridge events.
const (
	// BridgeJoined: Participant joined the room.
	BridgeJoined BridgeEventKind = iota + 1
	// BridgeUpdated: Participant's state (Muted, Display, Setup) changed.
	BridgeUpdated
	// BridgeLeft: participant ID left.
	BridgeLeft
	// BridgeTalking: participant ID started talking (this one included).
	BridgeTalking
	// BridgeStoppedTalking: participant ID stopped talking. Janus sends none
	// for a participant who mutes while talking.
	BridgeStoppedTalking
	// BridgeKicked: participant ID was kicked; when it is this one, it is
	// out of the room and its PeerConnection is hung up.
	BridgeKicked
	// BridgeDestroyed: the room was destroyed; this participant is out.
	BridgeDestroyed
	// BridgeSignal: Signal for this participant's negotiator: Janus's
	// answer, or one of its candidates (which can precede the answer).
	BridgeSignal
	// BridgeSignalFailed: Janus rejected our offer (Err).
	BridgeSignalFailed
	// BridgeMediaUp: the PeerConnection to the mixer is up.
	BridgeMediaUp
	// BridgeMedia: Janus started or stopped receiving our audio (Receiving).
	BridgeMedia
	// BridgeHangup: Janus closed the PeerConnection (Reason).
	BridgeHangup
	// BridgeDisconnected: the API connection dropped; BridgeReclaimed
	// follows once the session is claimed back, or the events end.
	BridgeDisconnected
	// BridgeReclaimed: the API connection dropped and the session was
	// claimed back; Participants is the room's list now (events in between
	// are lost), or Err says why it could not be read.
	BridgeReclaimed
)

// BridgeEvent is something the AudioBridge told this participant.
type BridgeEvent struct {
	Kind         BridgeEventKind
	Room         uint64
	ID           uint64
	Participant  Participant
	Participants []Participant
	Signal       negotiation.Signal
	Receiving    bool
	Reason       string
	Err          error
}

// AudioBridge is a handle attached to the AudioBridge plugin: it manages
// rooms and takes part in one room at a time.
type AudioBridge struct {
	h      *Handle
	events *mailbox.Mailbox[BridgeEvent]

	mu   sync.Mutex
	room uint64 // joined room, 0 when none
	id   uint64 // this participant's ID in room
	err  error  // why the handle ended
}

// AttachAudioBridge attaches a handle to the AudioBridge plugin.
func AttachAudioBridge(ctx context.Context, s *Session) (*AudioBridge, error) {
	b := &AudioBridge{events: mailbox.New[BridgeEvent]()}
	h, err := s.attach(ctx, AudioBridgePlugin, bridgeSink{b})
	if err != nil {
		b.events.Abandon()
		return nil, err
	}
	b.h = h
	return b, nil
}

// Handle is the plugin handle under b.
func (b *AudioBridge) Handle() *Handle { return b.h }

// Events delivers the room's events in order. It is closed when the handle
// is detached or the session ends; Err says why.
func (b *AudioBridge) Events() <-chan BridgeEvent { return b.events.Out() }

// Err returns why b's events ended, or nil.
func (b *AudioBridge) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Room returns the room b has joined, or 0.
func (b *AudioBridge) Room() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.room
}

// Create creates a room and returns its ID.
func (b *AudioBridge) Create(ctx context.Context, o RoomOptions) (uint64, error) {
	body := map[string]any{"request": "create"}
	if o.Room != 0 {
		body["room"] = o.Room
	}
	if o.Description != "" {
		body["description"] = o.Description
	}
	if o.Secret != "" {
		body["secret"] = o.Secret
	}
	if o.Pin != "" {
		body["pin"] = o.Pin
	}
	if o.Private {
		body["is_private"] = true
	}
	if o.SamplingRate != 0 {
		body["sampling_rate"] = o.SamplingRate
	}
	if o.TalkingEvents {
		body["audiolevel_event"] = true
	}
	if o.AudioActivePackets > 0 {
		body["audio_active_packets"] = o.AudioActivePackets
	}
	if o.AudioLevelAverage > 0 {
		body["audio_level_average"] = o.AudioLevelAverage
	}
	switch {
	case o.Prebuffering == 0:
		body["default_prebuffering"] = DefaultPrebuffering
	case o.Prebuffering > 0:
		body["default_prebuffering"] = o.Prebuffering
	}
	var out struct {
		Room uint64 `json:"room"`
	}
	if err := b.request(ctx, "create", body, &out); err != nil {
		return 0, err
	}
	if out.Room == 0 {
		return 0, fmt.Errorf("%w: created without a room ID", ErrProtocol)
	}
	return out.Room, nil
}

// Destroy destroys a room; its participants get BridgeDestroyed.
func (b *AudioBridge) Destroy(ctx context.Context, room uint64, secret string) error {
	body := map[string]any{"request": "destroy", "room": room}
	if secret != "" {
		body["secret"] = secret
	}
	return b.request(ctx, "destroy", body, nil)
}

// Exists reports whether a room exists.
func (b *AudioBridge) Exists(ctx context.Context, room uint64) (bool, error) {
	var out struct {
		Exists bool `json:"exists"`
	}
	err := b.request(ctx, "exists", map[string]any{"request": "exists", "room": room}, &out)
	return out.Exists, err
}

// Participants lists a room's participants.
func (b *AudioBridge) Participants(ctx context.Context, room uint64) ([]Participant, error) {
	var out struct {
		Participants []Participant `json:"participants"`
	}
	err := b.request(ctx, "listparticipants", map[string]any{"request": "listparticipants", "room": room}, &out)
	return out.Participants, err
}

// Kick removes participant id from a room.
func (b *AudioBridge) Kick(ctx context.Context, room uint64, secret string, id uint64) error {
	body := map[string]any{"request": "kick", "room": room, "id": id}
	if secret != "" {
		body["secret"] = secret
	}
	return b.request(ctx, "kick", body, nil)
}

// Join joins a room as a participant. The PeerConnection to the mixer is
// negotiated afterwards through Signal.
func (b *AudioBridge) Join(ctx context.Context, room uint64, o JoinOptions) (Joined, error) {
	body := map[string]any{"request": "join", "room": room}
	if o.ID != 0 {
		body["id"] = o.ID
	}
	if o.Display != "" {
		body["display"] = o.Display
	}
	if o.Pin != "" {
		body["pin"] = o.Pin
	}
	if o.Muted {
		body["muted"] = true
	}
	var out struct {
		Room         uint64        `json:"room"`
		ID           uint64        `json:"id"`
		Participants []Participant `json:"participants"`
	}
	if err := b.request(ctx, "join", body, &out); err != nil {
		return Joined{}, err
	}
	b.mu.Lock()
	b.room, b.id = out.Room, out.ID
	b.mu.Unlock()
	return Joined{Room: out.Room, ID: out.ID, Participants: out.Participants}, nil
}

// Mute mutes or unmutes this participant in the mix; the others get
// BridgeUpdated.
func (b *AudioBridge) Mute(ctx context.Context, muted bool) error {
	return b.request(ctx, "configure", map[string]any{"request": "configure", "muted": muted}, nil)
}

// Leave leaves the room; the PeerConnection stays up for a later join.
func (b *AudioBridge) Leave(ctx context.Context) error {
	err := b.request(ctx, "leave", map[string]any{"request": "leave"}, nil)
	b.mu.Lock()
	b.room = 0
	b.mu.Unlock()
	return err
}

// Close detaches the handle, which leaves the room and hangs the
// PeerConnection up; events not yet read are dropped.
func (b *AudioBridge) Close(ctx context.Context) error {
	return b.h.Detach(ctx)
}

// Signal sends a negotiator's Signal to the mixer without waiting: an offer
// goes with a configure request, and Janus's answer comes back as a
// BridgeSignal event (or BridgeSignalFailed); a candidate is trickled. It
// has negotiation.Config.Send's signature.
func (b *AudioBridge) Signal(s negotiation.Signal) error {
	switch {
	case s.Description != nil:
		if s.Description.Type != webrtc.SDPTypeOffer {
			return fmt.Errorf("janus: the AudioBridge takes offers only, not %s", s.Description.Type)
		}
		b.h.messageAsync(map[string]any{"request": "configure"}, s.Description, func(r *Reply, err error) {
			if err == nil && (r.JSEP == nil || r.JSEP.Type != webrtc.SDPTypeAnswer) {
				err = fmt.Errorf("%w: configure with an offer got no answer", ErrProtocol)
			}
			if err != nil {
				b.events.Put(BridgeEvent{Kind: BridgeSignalFailed, Err: err})
				return
			}
			b.events.Put(BridgeEvent{Kind: BridgeSignal, Signal: negotiation.Signal{Description: r.JSEP}})
		})
	case s.Candidate != nil:
		b.h.trickleAsync(s.Candidate)
	}
	return nil
}

// request sends a plugin request and decodes its reply into out.
func (b *AudioBridge) request(ctx context.Context, name string, body map[string]any, out any) error {
	r, err := b.h.Message(ctx, body, nil)
	if err != nil {
		return fmt.Errorf("janus: audiobridge %s: %w", name, err)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			return fmt.Errorf("%w: audiobridge %s: %v", ErrProtocol, name, err)
		}
	}
	return nil
}

// bridgeEvent is the payload of an AudioBridge event.
type bridgeEvent struct {
	AudioBridge  string        `json:"audiobridge"`
	Room         uint64        `json:"room"`
	ID           uint64        `json:"id"`
	Participants []Participant `json:"participants"`
	Leaving      uint64        `json:"leaving"`
	Kicked       uint64        `json:"kicked"`
	KickedAll    uint64        `json:"kicked_all"`
	ErrorCode    int           `json:"error_code"`
	Error        string        `json:"error"`
}

// bridgeSink turns the handle's events into BridgeEvents, on the session's
// goroutine.
type bridgeSink struct{ b *AudioBridge }

func (k bridgeSink) event(e Event) {
	b := k.b
	switch e.Kind {
	case EventPlugin:
		k.plugin(e)
	case EventTrickle:
		if e.Candidate != nil {
			b.events.Put(BridgeEvent{Kind: BridgeSignal, Signal: negotiation.Signal{Candidate: e.Candidate}})
		}
	case EventWebRTCUp:
		b.events.Put(BridgeEvent{Kind: BridgeMediaUp})
	case EventMedia:
		b.events.Put(BridgeEvent{Kind: BridgeMedia, Receiving: e.Receiving})
	case EventHangup:
		b.events.Put(BridgeEvent{Kind: BridgeHangup, Reason: e.Reason})
	case EventDisconnected:
		b.events.Put(BridgeEvent{Kind: BridgeDisconnected})
	case EventReclaimed:
		room := b.Room()
		if room == 0 {
			b.events.Put(BridgeEvent{Kind: BridgeReclaimed})
			return
		}
		b.h.messageAsync(map[string]any{"request": "listparticipants", "room": room}, nil, func(r *Reply, err error) {
			var out struct {
				Participants []Participant `json:"participants"`
			}
			if err == nil {
				if jerr := json.Unmarshal(r.Data, &out); jerr != nil {
					err = fmt.Errorf("%w: listparticipants: %v", ErrProtocol, jerr)
				}
			}
			b.events.Put(BridgeEvent{Kind: BridgeReclaimed, Room: room, Participants: out.Participants, Err: err})
		})
	}
}

func (k bridgeSink) plugin(e Event) {
	b := k.b
	var d bridgeEvent
	if err := json.Unmarshal(e.Data, &d); err != nil {
		b.h.s.log.Warn("janus: bad audiobridge event", "err", err)
		return
	}
	put := func(ev BridgeEvent) {
		ev.Room = d.Room
		b.events.Put(ev)
	}
	switch {
	case d.ErrorCode != 0:
		b.h.s.log.Warn("janus: audiobridge error event", "code", d.ErrorCode, "error", d.Error)
	case d.AudioBridge == "joined":
		for _, p := range d.Participants {
			put(BridgeEvent{Kind: BridgeJoined, ID: p.ID, Participant: p})
		}
	case d.AudioBridge == "talking":
		put(BridgeEvent{Kind: BridgeTalking, ID: d.ID})
	case d.AudioBridge == "stopped-talking":
		put(BridgeEvent{Kind: BridgeStoppedTalking, ID: d.ID})
	case d.AudioBridge == "destroyed":
		b.mu.Lock()
		b.room = 0
		b.mu.Unlock()
		put(BridgeEvent{Kind: BridgeDestroyed})
	case d.AudioBridge == "event" && d.Leaving != 0:
		put(BridgeEvent{Kind: BridgeLeft, ID: d.Leaving})
	case d.AudioBridge == "event" && (d.Kicked != 0 || d.KickedAll != 0):
		id := max(d.Kicked, d.KickedAll)
		b.mu.Lock()
		if id == b.id {
			b.room = 0
		}
		b.mu.Unlock()
		put(BridgeEvent{Kind: BridgeKicked, ID: id})
	case d.AudioBridge == "event":
		for _, p := range d.Participants {
			put(BridgeEvent{Kind: BridgeUpdated, ID: p.ID, Participant: p})
		}
	}
	if e.JSEP != nil {
		b.events.Put(BridgeEvent{Kind: BridgeSignal, Signal: negotiation.Signal{Description: e.JSEP}})
	}
}

func (k bridgeSink) end(err error) {
	k.b.mu.Lock()
	k.b.err = err
	k.b.mu.Unlock()
	k.b.events.Close()
}

func (k bridgeSink) abandon() { k.b.events.Abandon() }
