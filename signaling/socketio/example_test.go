package socketio_test

import (
	"context"
	"log"
	"time"

	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/signaling/socketio"
)

// Dialtone's own protocol over Socket.IO: sign in to the /dialtone
// namespace of a forwarding server (testdata/server.js) and call bob.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := socketio.Dial(ctx, "http://127.0.0.1:3000", socketio.Config{
		Conn: socketio.ConnConfig{
			Namespace: "/dialtone",
			Auth:      map[string]string{"user": "alice"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	phone, err := call.NewPhone(tr, call.Config{DisplayName: "Alice"})
	if err != nil {
		log.Fatal(err)
	}
	defer phone.Close()

	c, err := phone.Dial(ctx, "bob")
	if err != nil {
		log.Fatal(err)
	}
	reason, _ := c.Wait(ctx)
	log.Printf("call ended: %s", reason)
}

// The room-relay mode: join room "demo" of an app whose server relays
// {room, sdp} and {room, candidate} objects, answer the page that calls,
// then call it back.
func ExampleJoinRoom() {
	ctx := context.Background()
	room, err := socketio.JoinRoom(ctx, "https://app.example", socketio.RoomConfig{
		Room: "demo",
		User: "gophone",
		// The app's event names, where they differ from the defaults.
		Events: socketio.Events{Candidate: "ice-candidate", Leave: "hangup"},
		Shape:  socketio.Shape{Style: socketio.StyleObject, RoomKey: "roomId"},
	})
	if err != nil {
		log.Fatal(err)
	}
	phone, err := call.NewPhone(room, call.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer phone.Close()

	in := <-phone.Incoming() // the page sent an offer
	if err := in.Accept(ctx); err != nil {
		log.Fatal(err)
	}
	_, _ = in.Wait(ctx) // until the page leaves

	out, err := phone.Dial(ctx, room.Peer())
	if err != nil {
		log.Fatal(err)
	}
	_, _ = out.Wait(ctx)
}
