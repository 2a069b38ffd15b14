package call_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// Two phones in one process: alice calls bob, bob answers, alice hangs up.
// In a real program the phones would be made with call.NewPhone on a
// signaling.Dial transport; calltest wires them to an in-process server,
// loopback networking and virtual audio devices.
func ExamplePhone_Dial() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lab := calltest.NewLab(server.Config{})
	defer lab.Close()
	alice, _ := lab.NewPhone(ctx, "alice", calltest.PhoneOptions{})
	bob, _ := lab.NewPhone(ctx, "bob", calltest.PhoneOptions{})

	go func() {
		in := <-bob.Incoming()
		_ = in.Accept(ctx)
	}()

	c, err := alice.Dial(ctx, "bob")
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	for e := range c.Events() {
		if e.Kind != call.EventState {
			continue
		}
		if e.State == call.Ended {
			fmt.Println(e.State, e.Reason)
		} else {
			fmt.Println(e.State)
		}
		if e.State == call.Connected {
			c.Hangup()
		}
	}
	// Output:
	// idle
	// dialing
	// waiting
	// connecting
	// connected
	// ended hangup
}

// Answer every incoming call, and report how it ended.
func ExampleCall_Accept() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lab := calltest.NewLab(server.Config{})
	defer lab.Close()
	alice, _ := lab.NewPhone(ctx, "alice", calltest.PhoneOptions{})
	bob, _ := lab.NewPhone(ctx, "bob", calltest.PhoneOptions{})

	out, _ := alice.Dial(ctx, "bob")

	in := <-bob.Incoming()
	fmt.Println("incoming from", in.Peer())
	if err := in.Accept(ctx); err != nil {
		fmt.Println("accept:", err)
		return
	}
	for e := range in.Events() {
		if e.Kind == call.EventState && e.State == call.Connected {
			out.Hangup() // the caller hangs up once we are connected
		}
		if e.Kind == call.EventState && e.State == call.Ended {
			fmt.Println("ended:", e.Reason)
		}
	}
	// Output:
	// incoming from alice
	// ended: remote-hangup
}

// Record a call: a stereo WAV (this side's microphone left, the far end
// right, on one timeline) and the far end's Opus stream as Ogg, as it
// came over the network. A recording started before the answer begins
// with it; Stop ends it mid-call, and so does the end of the call.
func ExampleCall_Record() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lab := calltest.NewLab(server.Config{})
	defer lab.Close()
	alice, _ := lab.NewPhone(ctx, "alice", calltest.PhoneOptions{})
	bob, _ := lab.NewPhone(ctx, "bob", calltest.PhoneOptions{})
	go func() {
		in := <-bob.Incoming()
		_ = in.Accept(ctx)
	}()

	dir, _ := os.MkdirTemp("", "dialtone-example")
	defer os.RemoveAll(dir)
	wav, _ := os.Create(filepath.Join(dir, "call.wav"))
	defer wav.Close()
	ogg, _ := os.Create(filepath.Join(dir, "call.ogg"))
	defer ogg.Close()

	c, err := alice.Dial(ctx, "bob")
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	rec, err := c.Record(ctx, call.RecordConfig{WAV: wav, Ogg: ogg})
	if err != nil {
		fmt.Println("record:", err)
		return
	}
	for e := range c.Events() {
		if e.Kind == call.EventState && e.State == call.Connected {
			break
		}
	}
	time.Sleep(time.Second) // the conversation
	// ErrNotOpus: the call ran G.711 (a build without cgo), so only the
	// WAV was recorded.
	if err := rec.Stop(ctx); err != nil && !errors.Is(err, call.ErrNotOpus) {
		fmt.Println("stop:", err)
	}
	c.Hangup()

	w, err := media.OpenWAV(wav.Name())
	if err != nil {
		fmt.Println("read:", err)
		return
	}
	fmt.Println("channels:", w.SourceChannels)
	fmt.Println("about a second:", rec.Duration() > 900*time.Millisecond && rec.Duration() < 1500*time.Millisecond)
	// Output:
	// channels: 2
	// about a second: true
}

// A tour of the API: a signaling server, two phones, a call with its
// events, and what a call can do. Set-up first: a signaling server in this
// process on 127.0.0.1 (in production, the wss:// URL of yours), and a
// Config that keeps media on loopback with virtual audio devices (in
// production, call.Config{} uses the default devices).
func Example_tour() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := server.New(server.Config{DevMode: true}) // dev mode: the token is the user name
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
	cfg := call.Config{
		SettingEngine: calltest.Loopback(),
		Audio:         call.AudioConfig{Kind: audio.KindVirtual},
	}
	connect := func(user string) *call.Phone {
		tr, err := signaling.Dial(ctx, url, signaling.DialConfig{Token: user})
		if err != nil {
			panic(err)
		}
		phone, err := call.NewPhone(tr, cfg)
		if err != nil {
			panic(err)
		}
		return phone
	}
	alice, bob := connect("alice"), connect("bob")
	defer alice.Close()
	defer bob.Close()

	// Bob answers every call, mutes his microphone, sends DTMF and a text,
	// and waits for the call to end.
	bobDone := make(chan call.Reason, 1)
	go func() {
		for in := range bob.Incoming() { // incoming calls, none lost before you listen
			_ = in.Accept(ctx) // or in.Decline(ctx)
			in.Mute(true)
			_ = in.SendDTMF(ctx, "12#") // both wait for the media path
			_ = in.SendText(ctx, "hi")
			reason, _ := in.Wait(ctx)
			bobDone <- reason
		}
	}()

	// Alice calls bob and follows the call's events.
	c, err := alice.Dial(ctx, "bob") // returns at once; ctx bounds the set-up
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	stop := context.AfterFunc(ctx, c.Hangup) // once connected, ctx no longer ends the call
	defer stop()
	var digits, text string
	for e := range c.Events() { // every event, in order, never dropped
		switch e.Kind {
		case call.EventState:
			if e.State == call.Ended {
				fmt.Println(e.State, e.Reason)
			} else {
				fmt.Println(e.State)
			}
		case call.EventDTMF:
			digits += string(e.Digit)
		case call.EventText:
			text = e.Text
		case call.EventStats:
			// e.Stats every second: RTT, loss, jitter, bit rates, MOS
		}
		if digits == "12#" && text != "" {
			fmt.Printf("bob sent DTMF %s and %q\n", digits, text)
			digits = ""
			c.Hangup()
		}
	}
	fmt.Println("bob's call ended:", <-bobDone)
	// Output:
	// idle
	// dialing
	// waiting
	// connecting
	// connected
	// bob sent DTMF 12# and "hi"
	// ended hangup
	// bob's call ended: remote-hangup
}

// Two phones in a room: bob joins after alice; alice sees him join and
// connect, then leaves.
func ExamplePhone_Join() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lab := calltest.NewLab(server.Config{})
	defer lab.Close()
	alice, _ := lab.NewPhone(ctx, "alice", calltest.PhoneOptions{})
	bob, _ := lab.NewPhone(ctx, "bob", calltest.PhoneOptions{})

	room, err := alice.Join(ctx, "standup", call.RoomConfig{DisplayName: "Alice"})
	if err != nil {
		fmt.Println("join:", err)
		return
	}
	if _, err := bob.Join(ctx, "standup", call.RoomConfig{DisplayName: "Bob"}); err != nil {
		fmt.Println("join:", err)
		return
	}
	for e := range room.Events() {
		switch e.Kind {
		case call.MemberJoined, call.MemberConnected:
			fmt.Println(e.Kind, e.Member.DisplayName)
			if e.Kind == call.MemberConnected {
				_ = room.Leave(ctx)
			}
		case call.RoomEnded:
			fmt.Println(e.Kind, e.Reason)
		}
	}
	// Output:
	// member-joined Bob
	// member-connected Bob
	// room-ended left
}
