package call_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roomWatcher records every event of a room and lets a test wait for one.
type roomWatcher struct {
	*eventLog[call.RoomEvent]
	r    *call.Room
	user string
}

func watchRoom(user string, r *call.Room) *roomWatcher {
	return &roomWatcher{eventLog: recordEvents(r.Events()), r: r, user: user}
}

// waitFor waits until an event matching ok has been seen and returns it.
func (w *roomWatcher) waitFor(t *testing.T, what string, d time.Duration, ok func(call.RoomEvent) bool) call.RoomEvent {
	t.Helper()
	return w.eventLog.waitFor(t, w.user, what, d, ok, func() string { return fmt.Sprintf("events: %v", w.log()) })
}

// waitMember waits for an event of kind about user.
func (w *roomWatcher) waitMember(t *testing.T, kind call.RoomEventKind, user string, d time.Duration) call.RoomEvent {
	t.Helper()
	return w.waitFor(t, kind.String()+" "+user, d, func(e call.RoomEvent) bool {
		return e.Kind == kind && e.Member.User == user
	})
}

// members lists, in order, the users of the events of kind.
func (w *roomWatcher) members(kind call.RoomEventKind) []string {
	var out []string
	for _, e := range w.snapshot() {
		if e.Kind == kind {
			out = append(out, e.Member.User)
		}
	}
	return out
}

func (w *roomWatcher) has(kind call.RoomEventKind, user string) bool {
	return slices.Contains(w.members(kind), user)
}

func (w *roomWatcher) log() []string {
	var out []string
	for _, e := range w.snapshot() {
		if e.Kind == call.MemberStats {
			continue
		}
		s := e.Kind.String()
		if e.Member.User != "" {
			s += ":" + e.Member.User
		}
		if e.Reason != "" {
			s += "(" + string(e.Reason) + ")"
		}
		out = append(out, s)
	}
	return out
}

// member is one phone of a room test with its microphone's tone.
type member struct {
	*calltest.Phone
	tone float64
	room *call.Room
	w    *roomWatcher
}

// toneMic is a microphone playing a steady sine at freq: a whole number
// of periods per second, so the loop has no seam.
func toneMic(freq float64) pcm.Reader {
	return pcm.Loop(mediatest.Sine(sec, freq, 0.2))
}

func newMember(t *testing.T, lab *calltest.Lab, user string, freq float64) *member {
	t.Helper()
	return &member{Phone: newPhone(t, lab, user, calltest.PhoneOptions{Mic: toneMic(freq)}), tone: freq}
}

func (m *member) join(t *testing.T, room string) {
	t.Helper()
	r, err := m.Join(ctxT(t, setupWait), room, call.RoomConfig{DisplayName: strings.ToUpper(m.User())})
	require.NoError(t, err, "%s joins", m.User())
	m.room, m.w = r, watchRoom(m.User(), r)
	t.Cleanup(func() { _ = r.Leave(context.Background()) })
}

// waitConnected waits until m's media with every one of others is up.
func (m *member) waitConnected(t *testing.T, others ...*member) {
	t.Helper()
	for _, o := range others {
		m.w.waitMember(t, call.MemberConnected, o.User(), setupWait)
	}
}

// heard returns the next d of what m's speaker plays, from now on.
func (m *member) heard(t *testing.T, d time.Duration) []int16 {
	t.Helper()
	start := m.Speaker.Len()
	n := int(d.Seconds() * sec)
	require.NoError(t, m.Speaker.Wait(ctxT(t, d+5*time.Second), start+n))
	return m.Speaker.Samples()[start : start+n]
}

// tones measures, in what a member heard, the share of each member's
// tone: the median over 100 ms windows (a whole number of periods of every
// test tone), so that a concealed frame or a jitter-buffer splice, which
// shifts a tone's phase, spoils one window rather than the coherent sum
// over the whole recording.
func tones(pcm []int16, members ...*member) map[string]float64 {
	out := make(map[string]float64, len(members))
	for _, o := range members {
		out[o.User()] = toneShare(pcm, o.tone)
	}
	return out
}

func toneShare(pcm []int16, freq float64) float64 {
	return mediatest.BlockToneShare(pcm, freq)
}

// toneWindows is freq's share in each 100 ms window of pcm.
func toneWindows(pcm []int16, freq float64) []float64 {
	const window = sec / 10
	var shares []float64
	for i := 0; i+window <= len(pcm); i += window {
		shares = append(shares, mediatest.ToneShare(pcm[i:i+window], freq))
	}
	return shares
}

// toneCount counts the 100 ms windows of pcm where freq is most of the
// energy: the windows a burst of that tone was heard in.
func toneCount(pcm []int16, freq float64) int {
	n := 0
	for _, s := range toneWindows(pcm, freq) {
		if s > 0.5 {
			n++
		}
	}
	return n
}

// checkHears asserts that m hears every one of others' tones and not
// those in silent (its own included).
func (m *member) checkHears(t *testing.T, others []*member, silent []*member) {
	t.Helper()
	got := m.heard(t, time.Second)
	shares := tones(got, append(append([]*member{}, others...), silent...)...)
	t.Logf("%s hears %v", m.User(), shares)
	for _, o := range others {
		assert.Greater(t, shares[o.User()], 0.15, "%s must hear %s's %.0f Hz tone", m.User(), o.User(), o.tone)
	}
	for _, o := range silent {
		assert.Less(t, shares[o.User()], 0.01, "%s must not hear %s's %.0f Hz tone", m.User(), o.User(), o.tone)
	}
}

func without(all []*member, m *member) []*member {
	var out []*member
	for _, x := range all {
		if x != m {
			out = append(out, x)
		}
	}
	return out
}

// TestRoomFourMembersHearEachOther: four members, each microphone a tone
// of its own; two join one after the other, the last two at the same
// instant. Each hears the other three, never itself; join events arrive
// on every member, once per member; a member that leaves is reported
// left to the others, who stop hearing it, and its room releases
// everything.
func TestRoomFourMembersHearEachOther(t *testing.T) {
	lab := newLab(t, server.Config{})
	all := []*member{
		newMember(t, lab, "alice", 440),
		newMember(t, lab, "bob", 620),
		newMember(t, lab, "carol", 820),
		newMember(t, lab, "dave", 1020),
	}
	alice, bob, carol, dave := all[0], all[1], all[2], all[3]
	alice.join(t, "standup")
	bob.join(t, "standup")
	var wg sync.WaitGroup
	for _, m := range []*member{carol, dave} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := m.Join(ctxT(t, setupWait), "standup", call.RoomConfig{DisplayName: strings.ToUpper(m.User())})
			if !assert.NoError(t, err, "%s joins", m.User()) {
				return
			}
			m.room, m.w = r, watchRoom(m.User(), r)
			t.Cleanup(func() { _ = r.Leave(context.Background()) })
		}()
	}
	wg.Wait()
	require.NotNil(t, carol.room)
	require.NotNil(t, dave.room)

	for _, m := range all {
		m.waitConnected(t, without(all, m)...)
	}
	for _, m := range all {
		joined := m.w.members(call.MemberJoined)
		assert.ElementsMatch(t, usersOf(without(all, m)), joined, "%s: one joined event per other member", m.User())
		ms := m.room.Members()
		require.Len(t, ms, 3, "%s: members", m.User())
		assert.ElementsMatch(t, usersOf(without(all, m)), membersUsers(ms), "%s: members", m.User())
		for _, x := range ms {
			assert.True(t, x.Connected, "%s sees %s connected", m.User(), x.User)
			assert.Equal(t, strings.ToUpper(x.User), x.DisplayName)
		}
	}
	// Alice was first: bob joined before the two who came together.
	assert.Equal(t, "bob", alice.w.members(call.MemberJoined)[0])
	// Dave's list holds alice and bob in joining order, and so do his
	// Members.
	dj := dave.w.members(call.MemberJoined)
	assert.Less(t, indexOf(dj, "alice"), indexOf(dj, "bob"))
	dm := membersUsers(dave.room.Members())
	assert.Less(t, indexOf(dm, "alice"), indexOf(dm, "bob"))

	// The jitter buffers settle on their first packets.
	alice.heard(t, 500*time.Millisecond)
	for _, m := range all {
		m.checkHears(t, without(all, m), []*member{m})
	}

	// Dave leaves: the others are told (left, not gone), drop him from
	// their members and stop hearing his tone; his room releases
	// everything.
	require.NoError(t, dave.room.Leave(ctxT(t, setupWait)))
	assert.Equal(t, call.ReasonLeft, dave.room.Reason())
	dave.w.waitFor(t, "room-ended", setupWait, func(e call.RoomEvent) bool { return e.Kind == call.RoomEnded })
	rest := all[:3]
	for _, m := range rest {
		e := m.w.waitMember(t, call.MemberLeft, "dave", setupWait)
		assert.Equal(t, call.ReasonLeft, e.Reason)
		assert.NotContains(t, membersUsers(m.room.Members()), "dave")
	}
	for _, m := range rest {
		// Past what the jitter buffer still held of him.
		m.heard(t, 300*time.Millisecond)
		m.checkHears(t, without(rest, m), []*member{m, dave})
	}
}

func usersOf(ms []*member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.User())
	}
	return out
}

func membersUsers(ms []call.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.User)
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// TestRoomMuteAndTalking: talking events follow whoever speaks (bob's
// microphone plays bursts, carol's is silent); when bob mutes, the others
// get MemberMuted and hear nothing from him, and hear him again after
// MemberUnmuted.
func TestRoomMuteAndTalking(t *testing.T) {
	lab := newLab(t, server.Config{})
	burst := append(mediatest.Sine(sec/2, 620, 0.2), make([]int16, sec)...)
	alice := newMember(t, lab, "alice", 440)
	bob := &member{Phone: newPhone(t, lab, "bob", calltest.PhoneOptions{Mic: pcm.Loop(burst)}), tone: 620}
	carol := &member{Phone: newPhone(t, lab, "carol", calltest.PhoneOptions{}), tone: 820}
	all := []*member{alice, bob, carol}
	for _, m := range all {
		m.join(t, "desk")
	}
	for _, m := range all {
		m.waitConnected(t, without(all, m)...)
	}

	// Bob's bursts: alice sees him start and stop talking, and never
	// carol, whose microphone is silent.
	on := alice.w.waitMember(t, call.MemberTalking, "bob", 5*time.Second)
	assert.Greater(t, on.Level, -40.0, "bob's level when he starts talking")
	alice.w.waitFor(t, "bob stops talking", 5*time.Second, func(e call.RoomEvent) bool {
		return e.Kind == call.MemberStoppedTalking && e.Member.User == "bob" && e.Time.After(on.Time)
	})
	assert.False(t, alice.w.has(call.MemberTalking, "carol"), "carol never talked")

	// Bob mutes: the others are told, and from then on hear nothing of
	// him.
	bob.room.Mute(true)
	assert.True(t, bob.room.Muted())
	for _, m := range []*member{alice, carol} {
		e := m.w.waitMember(t, call.MemberMuted, "bob", setupWait)
		assert.True(t, e.Member.Muted)
	}
	alice.heard(t, 300*time.Millisecond)
	got := alice.heard(t, 1500*time.Millisecond)
	assert.Zero(t, toneCount(got, 620), "a muted member is not heard")
	assert.Greater(t, toneShare(carol.heard(t, time.Second), 440), 0.5, "carol still hears alice")
	for _, x := range carol.room.Members() {
		if x.User == "bob" {
			assert.True(t, x.Muted, "Members shows bob muted")
		}
	}

	bob.room.Mute(false)
	alice.w.waitMember(t, call.MemberUnmuted, "bob", setupWait)
	alice.heard(t, 300*time.Millisecond)
	got = alice.heard(t, 1500*time.Millisecond)
	assert.GreaterOrEqual(t, toneCount(got, 620), 3, "bob is heard again (a 0.5 s burst every 1.5 s)")
}

// TestRoomVolumeAndText: SetVolume(user, 0) silences one member in the
// mix only; SendText reaches every member.
func TestRoomVolumeAndText(t *testing.T) {
	lab := newLab(t, server.Config{})
	all := []*member{newMember(t, lab, "alice", 440), newMember(t, lab, "bob", 620), newMember(t, lab, "carol", 820)}
	alice, bob, carol := all[0], all[1], all[2]
	for _, m := range all {
		m.join(t, "volume")
	}
	for _, m := range all {
		m.waitConnected(t, without(all, m)...)
	}
	alice.room.SetVolume("bob", 0)
	alice.heard(t, 100*time.Millisecond)
	shares := tones(alice.heard(t, time.Second), bob, carol)
	assert.Less(t, shares["bob"], 0.01, "bob at volume 0 is not in alice's mix")
	assert.Greater(t, shares["carol"], 0.5, "carol still is")
	assert.Greater(t, toneShare(carol.heard(t, time.Second), 620), 0.1, "the others still hear bob")

	require.NoError(t, alice.room.SendText(ctxT(t, setupWait), "hello room"))
	for _, m := range []*member{bob, carol} {
		e := m.w.waitMember(t, call.MemberText, "alice", setupWait)
		assert.Equal(t, "hello room", e.Text)
	}
	e := alice.w.waitFor(t, "stats of bob's stream", setupWait, func(e call.RoomEvent) bool {
		return e.Kind == call.MemberStats && e.Member.User == "bob" && e.Stats.PacketsReceived > 20
	})
	assert.Positive(t, e.Stats.PacketsSent, "the shared sender's count")
	assert.Positive(t, e.Stats.RecvBitrate)
}

// TestRoomBusyPolicy: while in a room a phone answers invites busy, and
// its own Dial and a second Join fail with ErrInRoom; a phone with a live
// call cannot join (ErrBusy). After Leave it can dial again.
func TestRoomBusyPolicy(t *testing.T) {
	lab := newLab(t, server.Config{})
	alice := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	bob := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	newPhone(t, lab, "carol", calltest.PhoneOptions{})

	room, err := alice.Join(ctxT(t, setupWait), "busy", call.RoomConfig{})
	require.NoError(t, err)
	c, err := bob.Dial(t.Context(), "alice")
	require.NoError(t, err)
	assert.Equal(t, call.ReasonBusy, watch(c).waitEnd(t, setupWait), "an invite to a member in a room is busy")

	_, err = alice.Dial(t.Context(), "bob")
	assert.ErrorIs(t, err, call.ErrInRoom)
	_, err = alice.Join(ctxT(t, setupWait), "other", call.RoomConfig{})
	assert.ErrorIs(t, err, call.ErrInRoom)

	// Bob rings carol; while his call is live he cannot join.
	bc, err := bob.Dial(t.Context(), "carol")
	require.NoError(t, err)
	_, err = bob.Join(ctxT(t, setupWait), "busy", call.RoomConfig{})
	assert.ErrorIs(t, err, call.ErrBusy)
	bc.Hangup()
	watch(bc).waitEnd(t, setupWait)

	require.NoError(t, room.Leave(ctxT(t, setupWait)))
	ac, err := alice.Dial(t.Context(), "carol")
	require.NoError(t, err, "out of the room, alice may call")
	ac.Hangup()
	watch(ac).waitEnd(t, setupWait)
}

// oldServer makes a transport look like a protocol version 1 server's.
type oldServer struct{ signaling.Transport }

func (o oldServer) Ready() signaling.Ready {
	r := o.Transport.Ready()
	r.Protocol = 0
	return r
}

// TestRoomJoinErrors: the server's refusals and the local checks come
// back from Join as their sentinel errors, and a refused join leaves the
// phone free to join elsewhere.
func TestRoomJoinErrors(t *testing.T) {
	lab := newLab(t, server.Config{
		MaxRoomSize: 2,
		RoomJoin: func(_ context.Context, user, room string) error {
			switch room {
			case "secret":
				return errors.New("members only")
			case "nowhere":
				return server.ErrUnknownRoom
			}
			return nil
		},
	})
	alice := newPhone(t, lab, "alice", calltest.PhoneOptions{})
	bob := newPhone(t, lab, "bob", calltest.PhoneOptions{})
	carol := newPhone(t, lab, "carol", calltest.PhoneOptions{})
	for _, p := range []*calltest.Phone{alice, bob} {
		r, err := p.Join(ctxT(t, setupWait), "pair", call.RoomConfig{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Leave(context.Background()) })
	}
	for _, tc := range []struct {
		room, display string
		want          error
	}{
		{"pair", "", call.ErrRoomFull},
		{"secret", "", call.ErrForbidden},
		{"nowhere", "", call.ErrUnknownRoom},
		{"no spaces", "", call.ErrBadRoom},
		{strings.Repeat("x", signaling.MaxRoomLength+1), "", call.ErrBadRoom},
		{"fine", "bad\nname", call.ErrBadRoom},
	} {
		_, err := carol.Join(ctxT(t, setupWait), tc.room, call.RoomConfig{DisplayName: tc.display})
		assert.ErrorIs(t, err, tc.want, "join %q", tc.room)
	}
	// Refused everywhere, carol is in no room: she may join another.
	r, err := carol.Join(ctxT(t, setupWait), "open", call.RoomConfig{})
	require.NoError(t, err)
	require.NoError(t, r.Leave(ctxT(t, setupWait)))

	conn, err := lab.Server.ConnectLocal(ctxT(t, setupWait), "dave", server.LocalOptions{})
	require.NoError(t, err)
	old, err := call.NewPhone(oldServer{conn}, fast())
	require.NoError(t, err)
	defer old.Close()
	_, err = old.Join(ctxT(t, setupWait), "pair", call.RoomConfig{})
	assert.ErrorIs(t, err, call.ErrNoRooms)
}

// TestRoomSignalingReconnect: a member whose signaling connection drops
// and comes back within the server's grace takes its membership back:
// it sees reconnecting then reconnected, the others see nothing, and the
// audio never stopped.
func TestRoomSignalingReconnect(t *testing.T) {
	lab := newLab(t, server.Config{})
	all := []*member{newMember(t, lab, "alice", 440), newMember(t, lab, "bob", 620)}
	alice, bob := all[0], all[1]
	for _, m := range all {
		m.join(t, "flaky")
	}
	for _, m := range all {
		m.waitConnected(t, without(all, m)...)
	}
	alice.Conn.Disconnect()
	alice.w.waitFor(t, "room-reconnecting", setupWait, func(e call.RoomEvent) bool { return e.Kind == call.RoomReconnecting })
	// The media does not need signaling.
	assert.Greater(t, toneShare(bob.heard(t, time.Second), 440), 0.5, "bob hears alice while her signaling is down")
	require.NoError(t, alice.Conn.Reconnect(ctxT(t, setupWait)))
	alice.w.waitFor(t, "room-reconnected", setupWait, func(e call.RoomEvent) bool { return e.Kind == call.RoomReconnected })
	assert.False(t, alice.w.has(call.MemberLeft, "bob"), "alice kept bob: %v", alice.w.log())
	assert.False(t, bob.w.has(call.MemberLeft, "alice"), "bob never saw alice leave: %v", bob.w.log())

	// Still a member: a mute reaches bob.
	alice.room.Mute(true)
	bob.w.waitMember(t, call.MemberMuted, "alice", setupWait)
	assert.Equal(t, fmt.Sprint([]string{"alice"}), fmt.Sprint(membersUsers(bob.room.Members())))
}

// networkRoom puts alice, bob and carol (tones 440, 620, 820 Hz) in room
// on a simulated network, a host each (5 ms delay, ICE restart after
// 200 ms disconnected; connect, when non-zero, is Config.ConnectTimeout),
// and waits until everyone's media is up.
func networkRoom(t *testing.T, room string, connect time.Duration) ([]*member, map[string]*calltest.Host) {
	t.Helper()
	lab := newLab(t, server.Config{})
	network, err := calltest.NewNetwork(calltest.NetworkConfig{Delay: 5 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = network.Close() })
	hosts := map[string]*calltest.Host{}
	mk := func(user string, freq float64) *member {
		h, err := network.Host()
		require.NoError(t, err)
		hosts[user] = h
		cfg := fast()
		cfg.DisconnectedGrace = 200 * time.Millisecond
		if connect > 0 {
			cfg.ConnectTimeout = connect
		}
		cfg.SettingEngine = h.SettingEngine
		return &member{Phone: newPhone(t, lab, user, calltest.PhoneOptions{Config: cfg, Mic: toneMic(freq)}), tone: freq}
	}
	all := []*member{mk("alice", 440), mk("bob", 620), mk("carol", 820)}
	for _, m := range all {
		m.join(t, room)
	}
	for _, m := range all {
		m.waitConnected(t, without(all, m)...)
	}
	return all, hosts
}

// TestRoomOneMemberNetworkCut: carol's link dies and comes back while
// alice and bob's stays up. Only the peer connections with carol restart
// ICE: alice and bob see carol reconnecting and reconnected, carol sees
// both of them so, nobody sees anything about the alice–bob pair, whose
// audio never stops, and carol is heard again afterwards.
func TestRoomOneMemberNetworkCut(t *testing.T) {
	all, hosts := networkRoom(t, "roaming", 0)
	alice, bob, carol := all[0], all[1], all[2]

	hosts["carol"].Cut(true)
	for _, m := range []*member{alice, bob} {
		m.w.waitMember(t, call.MemberReconnecting, "carol", 5*time.Second)
	}
	for _, o := range []*member{alice, bob} {
		carol.w.waitMember(t, call.MemberReconnecting, o.User(), 5*time.Second)
	}
	// Alice and bob still hear each other while carol is cut off.
	shares := tones(bob.heard(t, 500*time.Millisecond), alice, carol)
	assert.Greater(t, shares["alice"], 0.3, "bob hears alice during carol's cut: %v", shares)
	hosts["carol"].Cut(false)
	for _, m := range []*member{alice, bob} {
		m.w.waitMember(t, call.MemberReconnected, "carol", 10*time.Second)
	}
	for _, o := range []*member{alice, bob} {
		carol.w.waitMember(t, call.MemberReconnected, o.User(), 10*time.Second)
	}
	for _, pair := range [][2]*member{{alice, bob}, {bob, alice}} {
		for _, k := range []call.RoomEventKind{call.MemberReconnecting, call.MemberFailed, call.MemberLeft} {
			assert.False(t, pair[0].w.has(k, pair[1].User()), "%s saw %s about %s: %v", pair[0].User(), k, pair[1].User(), pair[0].w.log())
		}
	}
	alice.heard(t, 300*time.Millisecond)
	alice.checkHears(t, []*member{bob, carol}, []*member{alice})
}

// TestRoomMixedCodecs: carol's phone offers G.711 alone (as a build
// without cgo does), alice and bob Opus first. Each pair negotiates the
// codec both have: Opus between alice and bob, PCMU with carol. Each
// member's one microphone then goes out in both codecs, each to the peers
// that negotiated it, and everyone hears everyone.
func TestRoomMixedCodecs(t *testing.T) {
	lab := newLab(t, server.Config{})
	pcmuOnly := fast()
	pcmuOnly.Codec.Codecs = []string{media.CodecPCMU}
	all := []*member{
		newMember(t, lab, "alice", 440),
		newMember(t, lab, "bob", 620),
		{Phone: newPhone(t, lab, "carol", calltest.PhoneOptions{Config: pcmuOnly, Mic: toneMic(820)}), tone: 820},
	}
	for _, m := range all {
		m.join(t, "mixed")
	}
	for _, m := range all {
		m.waitConnected(t, without(all, m)...)
	}
	all[0].heard(t, 300*time.Millisecond)
	for _, m := range all {
		m.checkHears(t, without(all, m), []*member{m})
	}
}

// TestRoomPairStartsOver: carol's network is cut for longer than ICE
// restarts bridge, so each pair with her fails (MemberFailed on both
// sides) while alice and bob go on hearing each other. Once her network is
// back, each of her pairs starts over with a new peer connection (she
// joined last, so she offers, attempt 1 and on): MemberConnected again on
// both sides of both pairs, and everyone hears everyone.
func TestRoomPairStartsOver(t *testing.T) {
	all, hosts := networkRoom(t, "tunnel", 3*time.Second)
	alice, bob, carol := all[0], all[1], all[2]

	hosts["carol"].Cut(true)
	var failedAt time.Time
	for _, pair := range [][2]*member{{alice, carol}, {bob, carol}, {carol, alice}, {carol, bob}} {
		e := pair[0].w.waitMember(t, call.MemberFailed, pair[1].User(), 15*time.Second)
		t.Logf("%s: %s failed: %v", pair[0].User(), pair[1].User(), e.Err)
		if e.Time.After(failedAt) {
			failedAt = e.Time
		}
	}
	shares := tones(bob.heard(t, 500*time.Millisecond), alice, carol)
	assert.Greater(t, shares["alice"], 0.3, "bob hears alice while carol is cut off: %v", shares)
	assert.Less(t, shares["carol"], 0.01, "bob hears nothing of carol: %v", shares)
	for _, m := range []*member{alice, bob} {
		st := m.room.Members()
		i := slices.IndexFunc(st, func(x call.Member) bool { return x.User == "carol" })
		require.GreaterOrEqual(t, i, 0, "carol is still in %s's room", m.User())
		assert.False(t, st[i].Connected, "%s: carol not connected", m.User())
	}

	hosts["carol"].Cut(false)
	back := time.Now()
	for _, pair := range [][2]*member{{alice, carol}, {bob, carol}, {carol, alice}, {carol, bob}} {
		pair[0].w.waitFor(t, pair[1].User()+" connected again", 20*time.Second, func(e call.RoomEvent) bool {
			return e.Kind == call.MemberConnected && e.Member.User == pair[1].User() && e.Time.After(failedAt)
		})
	}
	t.Logf("every pair with carol connected again %v after her network came back", time.Since(back).Round(time.Millisecond))
	for _, pair := range [][2]*member{{alice, bob}, {bob, alice}} {
		for _, k := range []call.RoomEventKind{call.MemberReconnecting, call.MemberFailed, call.MemberLeft} {
			assert.False(t, pair[0].w.has(k, pair[1].User()), "%s saw %s about %s: %v", pair[0].User(), k, pair[1].User(), pair[0].w.log())
		}
	}
	carol.heard(t, 300*time.Millisecond)
	for _, m := range all {
		m.checkHears(t, without(all, m), []*member{m})
	}
}

// TestRoomSignalingLostPastGrace: alice's signaling stays down past the
// server's grace, so the server removes her (bob: MemberLeft "gone").
// When she is back her phone joins again as a new membership: both set
// up a new peer connection and hear each other again.
func TestRoomSignalingLostPastGrace(t *testing.T) {
	lab := newLab(t, server.Config{RoomGrace: 300 * time.Millisecond})
	all := []*member{newMember(t, lab, "alice", 440), newMember(t, lab, "bob", 620)}
	alice, bob := all[0], all[1]
	for _, m := range all {
		m.join(t, "grace")
	}
	for _, m := range all {
		m.waitConnected(t, without(all, m)...)
	}
	alice.Conn.Disconnect()
	left := bob.w.waitMember(t, call.MemberLeft, "alice", setupWait)
	assert.Equal(t, call.ReasonGone, left.Reason)
	assert.Empty(t, bob.room.Members())

	require.NoError(t, alice.Conn.Reconnect(ctxT(t, setupWait)))
	alice.w.waitFor(t, "room-reconnected", setupWait, func(e call.RoomEvent) bool { return e.Kind == call.RoomReconnected })
	// Alice's old membership is over: her peer connection with bob too.
	alice.w.waitMember(t, call.MemberLeft, "bob", setupWait)
	assert.Equal(t, []string{"bob", "bob"}, alice.w.members(call.MemberJoined), "bob joined anew on alice's side")
	bob.w.waitFor(t, "alice joined again", setupWait, func(e call.RoomEvent) bool {
		return e.Kind == call.MemberJoined && e.Time.After(left.Time)
	})
	for _, pair := range [][2]*member{{alice, bob}, {bob, alice}} {
		n := 0
		pair[0].w.waitFor(t, pair[1].User()+" connected again", setupWait, func(e call.RoomEvent) bool {
			if e.Kind == call.MemberConnected && e.Member.User == pair[1].User() {
				n++
			}
			return n == 2
		})
	}
	bob.heard(t, 300*time.Millisecond)
	bob.checkHears(t, []*member{alice}, []*member{bob})
	alice.checkHears(t, []*member{bob}, []*member{alice})
}

// TestRoomBadSignals: a member that sends garbage (room-signals with
// other sessions, a signal that is not one, an offer that is not SDP,
// a flood of them) and never sets up media disturbs nothing: the others
// keep hearing each other, the room goes on, and the bad member's peer
// connection is given up after ConnectTimeout (MemberFailed) while it
// stays listed.
func TestRoomBadSignals(t *testing.T) {
	lab := newLab(t, server.Config{})
	mk := func(user string, freq float64) *member {
		cfg := fast()
		cfg.ConnectTimeout = 1500 * time.Millisecond
		return &member{Phone: newPhone(t, lab, user, calltest.PhoneOptions{Config: cfg, Mic: toneMic(freq)}), tone: freq}
	}
	all := []*member{mk("alice", 440), mk("bob", 620)}
	alice, bob := all[0], all[1]
	for _, m := range all {
		m.join(t, "open")
	}
	for _, m := range all {
		m.waitConnected(t, without(all, m)...)
	}

	ctx := ctxT(t, setupWait)
	mallory, err := lab.Server.ConnectLocal(ctx, "mallory", server.LocalOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = mallory.Close() })
	join, err := signaling.NewMessage(signaling.TypeJoin, "", "open", signaling.Join{DisplayName: "M"})
	require.NoError(t, err)
	require.NoError(t, mallory.Send(ctx, join))
	var list signaling.Members
	for m := range mallory.Incoming() {
		if m.Type == signaling.TypeMembers {
			require.NoError(t, m.Unmarshal(&list))
			break
		}
	}
	require.Len(t, list.Members, 3)
	var aliceSession uint64
	for _, x := range list.Members {
		if x.User == "alice" {
			aliceSession = x.Session
		}
	}
	alice.w.waitMember(t, call.MemberJoined, "mallory", setupWait)

	send := func(session, peer uint64, signal string) {
		t.Helper()
		m, err := signaling.NewMessage(signaling.TypeRoomSignal, "alice", "open",
			signaling.RoomSignal{Session: session, PeerSession: peer, Signal: []byte(signal)})
		require.NoError(t, err)
		require.NoError(t, mallory.Send(ctx, m))
	}
	send(list.Session, aliceSession, `"not a signal"`)
	send(list.Session, aliceSession, `{"description":{"type":"offer","sdp":"garbage"}}`)
	send(list.Session, aliceSession, `{"candidate":{"candidate":"candidate:x","sdpMid":"9"}}`)
	send(list.Session, aliceSession, `{}`)
	for i := range 200 {
		send(list.Session+uint64(i)+1, aliceSession, `{"candidate":{"candidate":"held"}}`)    // a later session of mallory: held, bounded
		send(list.Session, aliceSession+uint64(i)+1, `{"candidate":{"candidate":"dropped"}}`) // not alice's session: dropped
	}

	e := alice.w.waitMember(t, call.MemberFailed, "mallory", setupWait)
	assert.Error(t, e.Err)
	assert.Contains(t, membersUsers(alice.room.Members()), "mallory", "a member without media stays listed")
	assert.False(t, alice.w.has(call.MemberFailed, "bob"))
	assert.Empty(t, alice.room.Reason(), "alice's room goes on")
	alice.checkHears(t, []*member{bob}, []*member{alice})
	bob.checkHears(t, []*member{alice}, []*member{bob})
}
