package call

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dialtone-dev/dialtone/internal/mailbox"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/pion/webrtc/v4"
)

// Phone is a registered user agent: it holds one signaling connection,
// places calls with Dial and receives them on Incoming. A Phone has at most
// one live call at a time (a softphone, not a PBX): an invite that arrives
// while a call is live is answered `busy` without disturbing that call.
//
// A Phone is safe for concurrent use. Close ends every call and stops every
// goroutine the Phone started.
type Phone struct {
	cfg Config
	tr  signaling.Transport
	log *slog.Logger

	incoming *mailbox.Mailbox[*Call]
	outbox   *mailbox.Mailbox[signaling.Message]

	mu    sync.Mutex
	calls map[string]*Call
	room  *Room // the room this phone is in, until it ends
	relay relayState
	// watched are the event queues someone subscribed to (Call.Events,
	// Room.Events) that may still hold events or a goroutine waiting on a
	// reader who walked away; Close releases them. Queues nobody
	// subscribed to stay on their Call or Room alone and go with it.
	watched []eventQueue
	up      chan struct{} // closed while the transport is up; replaced on down
	closed  bool
	cert    *webrtc.Certificate // the rooms' DTLS certificate (roomCertificate)

	apiOnce sync.Once
	api     *webrtc.API
	apiErr  error

	closing  chan struct{}
	sendDone chan struct{}  // closed when the sender has drained the outbox
	wg       sync.WaitGroup // receive and send loops
	actors   sync.WaitGroup // every call's actor, until it has released everything
}

// NewPhone makes a Phone on a connected transport (one that has received
// `ready`: signaling.Dial and server.ConnectLocal both return such). The
// Phone takes ownership of tr and closes it in Close.
func NewPhone(tr signaling.Transport, cfg Config) (*Phone, error) {
	if tr == nil {
		return nil, fmt.Errorf("call: %w", ErrNoTransport)
	}
	cfg = cfg.withDefaults()
	p := &Phone{
		cfg:      cfg,
		tr:       tr,
		log:      cfg.Logger.With("user", tr.Ready().User),
		incoming: mailbox.New[*Call](),
		outbox:   mailbox.New[signaling.Message](),
		calls:    make(map[string]*Call),
		up:       make(chan struct{}),
		closing:  make(chan struct{}),
		sendDone: make(chan struct{}),
	}
	close(p.up)
	p.setRelay(tr.Ready().ICEServers, tr.Ready().RelayTTL)
	p.wg.Add(2)
	go p.receive()
	go p.send()
	return p, nil
}

// User is the authenticated user ID of this phone.
func (p *Phone) User() string { return p.tr.Ready().User }

// Incoming delivers every incoming call, in order, from the moment the Phone
// was made: a call that arrived before anyone listened is still there. Each
// call arrives in state Ringing; answer it with Accept or Decline. The
// channel is closed by Close.
func (p *Phone) Incoming() <-chan *Call { return p.incoming.Out() }

// Dial places a call to user and returns at once with the call in state
// Dialing; follow it with Call.Events or Call.Wait. It fails only when the
// phone is closed, already has a live call (ErrBusy) or is in a room
// (ErrInRoom: leave it first).
//
// ctx bounds the call's set-up, as it bounds a net.Dialer's: if it is
// cancelled or expires before the call is connected, the call ends
// `cancelled` (and the callee's with it). Once connected, ctx no longer
// matters; end the call with Hangup.
func (p *Phone) Dial(ctx context.Context, user string, opts ...DialOption) (*Call, error) {
	if user == "" {
		return nil, fmt.Errorf("call: dial: %w", ErrNoPeer)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o dialOptions
	for _, opt := range opts {
		opt(&o)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if live := p.liveLocked(); live != nil {
		if !live.outgoing && live.peer == user && live.State() == Ringing {
			// The user we are dialling is calling us right now: both want
			// to talk, so answer their call instead of placing a second one.
			live.crossed.Store(true)
			p.mu.Unlock()
			live.post(cmdAccept{newRequest(context.Background())})
			return live, nil
		}
		p.mu.Unlock()
		return nil, fmt.Errorf("call: dial %s: %w (call %s is %s)", user, ErrBusy, live.id, live.State())
	}
	if p.room != nil {
		room := p.room.name
		p.mu.Unlock()
		return nil, fmt.Errorf("call: dial %s: %w (%s)", user, ErrInRoom, room)
	}
	c := newCall(p, newCallID(), user, true)
	c.display = o.displayName
	if c.display == "" {
		c.display = p.cfg.DisplayName
	}
	p.calls[c.id] = c
	// cmdDial is queued before the invite leaves, so the call is Dialing
	// before any answer to the invite can reach it.
	c.start()
	c.post(cmdDial{})
	// The invite leaves here, under p.mu, not from the call's actor: an
	// invite from the same peer that the receive loop handles after this
	// point then sees our call as live, and our invite is queued before any
	// `busy` it makes us send, so both phones resolve crossed calls alike.
	if m, err := signaling.NewMessage(signaling.TypeInvite, user, c.id, signaling.Invite{DisplayName: c.display}); err == nil {
		p.post(m)
	}
	// After the invite: the cancel an ended ctx sends must follow it.
	c.watchDial(ctx)
	p.mu.Unlock()
	return c, nil
}

// DialOption adjusts one call.
type DialOption func(*dialOptions)

type dialOptions struct {
	displayName string
}

// WithDisplayName overrides Config.DisplayName for one call.
func WithDisplayName(name string) DialOption {
	return func(o *dialOptions) { o.displayName = name }
}

// Close hangs up every live call and leaves the room (telling the peers and
// the members), waits for them to release their devices, closes the
// transport and stops every goroutine.
func (p *Phone) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	calls := make([]*Call, 0, len(p.calls))
	for _, c := range p.calls {
		calls = append(calls, c)
	}
	room := p.room
	p.mu.Unlock()

	for _, c := range calls {
		c.post(cmdHangup{reason: ReasonHangup})
	}
	if room != nil {
		room.post(cmdLeave{})
	}
	defer func() {
		// Event queues nobody finished reading: release them.
		p.mu.Lock()
		watched := p.watched
		p.watched = nil
		p.mu.Unlock()
		for _, q := range watched {
			q.Abandon()
		}
	}()
	// Every step of a call's teardown is bounded (end tone, pion's own
	// timeouts), so wait for all of them, including calls that ended
	// before Close and are still releasing: nothing may outlive Close.
	p.actors.Wait()
	// Every message queued so far (the hang-ups just made, a decline sent
	// right before Close) leaves before the transport goes: the sender ends
	// once the closed outbox is drained. Bounded, for a dead connection.
	p.outbox.Close()
	select {
	case <-p.sendDone:
	case <-time.After(2 * time.Second):
		p.log.Warn("signaling messages still queued at close were dropped")
	}
	close(p.closing)
	err := p.tr.Close()
	p.wg.Wait()
	p.incoming.Abandon()
	p.outbox.Abandon()
	for _, c := range calls {
		c.abandon()
	}
	if room != nil {
		room.abandon()
	}
	return err
}

// liveLocked returns a call that is not ended, if any.
func (p *Phone) liveLocked() *Call {
	for _, c := range p.calls {
		if !c.ended() {
			return c
		}
	}
	return nil
}

// forget removes an ended call from the routing table: later messages for
// it are ignored.
func (p *Phone) forget(c *Call) {
	p.mu.Lock()
	if p.calls[c.id] == c {
		delete(p.calls, c.id)
	}
	p.mu.Unlock()
}

// eventQueue is a Call's or a Room's event mailbox.
type eventQueue interface {
	Abandon()
	Drained() bool
}

// watchEvents registers the event queue of a call or room someone
// subscribed to, so that Close can release it. After Close there is
// nobody left to release it later: it is released at once.
func (p *Phone) watchEvents(q eventQueue) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		q.Abandon()
		return
	}
	// Forget the queues read to the end, so the list holds only those
	// whose reader may have walked away.
	p.watched = slices.DeleteFunc(p.watched, eventQueue.Drained)
	p.watched = append(p.watched, q)
	p.mu.Unlock()
}

// post queues m for the server. It never blocks: a sender goroutine writes
// messages in order and holds them while the connection is down, so a
// hang-up sent during a signaling outage still reaches the peer once the
// connection is back.
func (p *Phone) post(m signaling.Message) {
	p.outbox.Put(m)
}

func (p *Phone) send() {
	defer p.wg.Done()
	defer close(p.sendDone)
	for m := range p.outbox.Out() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.SendTimeout)
			err := p.tr.Send(ctx, m)
			cancel()
			if err == nil {
				break
			}
			if errors.Is(err, signaling.ErrDisconnected) || errors.Is(err, context.DeadlineExceeded) {
				p.mu.Lock()
				up := p.up
				p.mu.Unlock()
				select {
				case <-up:
					// Wait a beat so a Send racing the status change does
					// not spin.
					select {
					case <-time.After(10 * time.Millisecond):
					case <-p.closing:
						return
					}
					continue
				case <-p.closing:
					return
				}
			}
			p.log.Warn("signaling send failed; message dropped", "type", m.Type, "call", m.Call, "err", err)
			break
		}
	}
}

func (p *Phone) receive() {
	defer p.wg.Done()
	in, status := p.tr.Incoming(), p.tr.Status()
	for {
		select {
		case m, ok := <-in:
			if !ok {
				p.transportGone()
				return
			}
			p.dispatch(m)
		case st, ok := <-status:
			if !ok {
				status = nil
				continue
			}
			p.statusChanged(st)
		case <-p.closing:
			return
		}
	}
}

func (p *Phone) statusChanged(st signaling.Status) {
	p.mu.Lock()
	switch st.State {
	case signaling.StateDown:
		select {
		case <-p.up:
			p.up = make(chan struct{})
		default:
		}
	case signaling.StateUp:
		select {
		case <-p.up:
		default:
			close(p.up)
		}
	}
	calls := p.snapshotLocked()
	room := p.room
	p.mu.Unlock()
	p.log.Info("signaling connection", "state", st.State, "err", st.Err)
	for _, c := range calls {
		c.post(evSignaling{status: st})
	}
	if room != nil {
		room.post(evSignaling{status: st})
	}
}

func (p *Phone) snapshotLocked() []*Call {
	calls := make([]*Call, 0, len(p.calls))
	for _, c := range p.calls {
		calls = append(calls, c)
	}
	return calls
}

// transportGone ends every call whose setup still needs signaling: the
// transport stopped for good (closed, replaced, unauthorized).
func (p *Phone) transportGone() {
	p.mu.Lock()
	calls := p.snapshotLocked()
	room := p.room
	p.mu.Unlock()
	err := p.tr.Close()
	closed := evSignaling{status: signaling.Status{State: signaling.StateClosed, Err: err, Time: time.Now()}}
	for _, c := range calls {
		c.post(closed)
	}
	if room != nil {
		room.post(closed)
	}
}

// dispatch routes a server message to the call it names, or to the room:
// room messages (and the server's refusals of them) are told apart by type
// before any lookup by call ID, since their `call` is the room's name.
// Messages for a call or room this phone does not know are ignored by
// construction: a late `cancel` or `hangup` of an earlier call cannot
// touch the current one.
func (p *Phone) dispatch(m signaling.Message) {
	if !m.Type.Known() {
		// A later protocol version's type: ignored (the extension rule).
		p.log.Debug("message of unknown type ignored", "type", m.Type, "from", m.From)
		return
	}
	switch m.Type {
	case signaling.TypeReady:
		var r signaling.Ready
		if m.Unmarshal(&r) == nil {
			p.setRelay(r.ICEServers, r.RelayTTL)
		}
	case signaling.TypeRelayConfig:
		var r signaling.RelayConfig
		if m.Unmarshal(&r) == nil {
			p.setRelay(r.ICEServers, r.RelayTTL)
		}
	}
	switch m.Type {
	case signaling.TypeReady, signaling.TypeRelayConfig:
		p.mu.Lock()
		calls := p.snapshotLocked()
		room := p.room
		p.mu.Unlock()
		for _, c := range calls {
			c.post(evMessage{m})
		}
		if room != nil {
			room.post(evMessage{m})
		}
		return
	case signaling.TypeInvite:
		p.invited(m)
		return
	}
	if p.roomMessage(m) {
		return
	}
	if m.Call == "" {
		p.log.Debug("message without call ID ignored", "type", m.Type, "from", m.From)
		return
	}
	p.mu.Lock()
	c := p.calls[m.Call]
	p.mu.Unlock()
	if c == nil {
		p.log.Debug("message for unknown call ignored", "type", m.Type, "call", m.Call, "from", m.From)
		return
	}
	if m.From != "" && m.From != c.peer && m.Type != signaling.TypeError {
		p.log.Warn("message from a stranger to the call ignored", "type", m.Type, "call", m.Call, "from", m.From, "peer", c.peer)
		return
	}
	c.post(evMessage{m})
}

func (p *Phone) invited(m signaling.Message) {
	if m.Call == "" || m.From == "" {
		p.log.Warn("invite without call ID or caller ignored", "from", m.From, "call", m.Call)
		return
	}
	var inv signaling.Invite
	if len(m.Data) > 0 {
		if err := m.Unmarshal(&inv); err != nil {
			p.log.Warn("invite with bad data; caller info dropped", "call", m.Call, "err", err)
		}
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if _, dup := p.calls[m.Call]; dup {
		p.mu.Unlock()
		return
	}
	if p.room != nil {
		// In a room, 1:1 calls are refused: the caller hears busy.
		room := p.room.name
		p.mu.Unlock()
		p.log.Info("busy: invite refused while in a room", "call", m.Call, "from", m.From, "room", room)
		p.post(signaling.Message{Type: signaling.TypeBusy, To: m.From, Call: m.Call})
		return
	}
	live := p.liveLocked()
	var loser *Call
	if live != nil {
		// Both users dialled each other at once: both phones apply the same
		// rule (the lower call ID survives), so they agree without talking.
		if live.outgoing && live.peer == m.From && live.ringingOut() && m.Call < live.id {
			loser = live
		} else {
			p.mu.Unlock()
			p.log.Info("busy: invite refused", "call", m.Call, "from", m.From, "live", live.id)
			p.post(signaling.Message{Type: signaling.TypeBusy, To: m.From, Call: m.Call})
			return
		}
	}
	c := newCall(p, m.Call, m.From, false)
	c.display = inv.DisplayName
	c.crossed.Store(loser != nil)
	p.calls[c.id] = c
	p.mu.Unlock()
	c.start()
	c.post(evInvited{})
	if loser != nil {
		// Our user dialled this peer too: answer their call at once.
		p.log.Info("crossed calls: ours gives way", "ours", loser.id, "theirs", m.Call)
		loser.post(cmdHangup{reason: ReasonCancelled})
		c.post(cmdAccept{newRequest(context.Background())})
	}
	p.incoming.Put(c)
}

func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
