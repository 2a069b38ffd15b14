package call

import "github.com/dialtone-dev/dialtone/media"

// JanusReceiver is the receiver of a Janus room's mix, nil before its
// track arrives or in a mesh room.
func JanusReceiver(r *Room) *media.Receiver {
	if r.mixer == nil {
		return nil
	}
	return r.mixer.in.recv.Load()
}
