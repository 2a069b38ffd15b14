package call_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/signaling/server"
)

// Two phones in one process: alice calls bob, bob answers, alice hangs up.
// In a real program the phones would be made with call.New on a
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
