package call

import (
	"testing"

	"github.com/dialtone-dev/dialtone/signaling"
	"github.com/stretchr/testify/assert"
)

// TestWorstPeerDrivesFEC: the room's one sender is told the loss of the
// member that loses most of its stream, and only that member's reports
// reach it (the sender smooths per report); a member whose peer
// connection is gone does not count.
func TestWorstPeerDrivesFEC(t *testing.T) {
	peer := func(user string, loss int) *roomPeer {
		return &roomPeer{member: signaling.Member{User: user}, loss: loss, s: &session{}}
	}
	a, b, c := peer("alice", 0), peer("bob", 10), peer("carol", 3)
	peers := map[string]*roomPeer{"alice": a, "bob": b, "carol": c}
	assert.Same(t, b, worstPeer(peers), "the lossiest link")

	b.loss = 0
	assert.Same(t, c, worstPeer(peers), "bob's link healed: carol's is the worst now")

	c.loss = 0
	assert.Same(t, a, worstPeer(peers), "all clean: one member's reports, the first by ID")

	a.loss, a.s = 50, nil
	assert.Same(t, b, worstPeer(peers), "a failed peer connection does not count")
	assert.Nil(t, worstPeer(nil))
}
