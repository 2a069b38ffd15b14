package negotiation

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// maxQueuedCandidates bounds the remote candidates kept while they wait for
// a description; beyond it the oldest are dropped.
const maxQueuedCandidates = 256

// queuedCandidate is a remote candidate waiting for the remote description
// of its ICE generation.
type queuedCandidate struct {
	init  webrtc.ICECandidateInit
	ufrag string // "" when the sender did not say
}

// parseCandidate checks a remote candidate and returns the ufrag of the ICE
// generation it belongs to ("" if unknown). skip reports candidates that are
// valid but that pion would discard anyway (end-of-candidates, unknown
// candidate types, unresolvable network types).
func parseCandidate(c webrtc.ICECandidateInit) (ufrag string, skip bool, err error) {
	value := strings.TrimPrefix(c.Candidate, "candidate:")
	if value == "" {
		return "", true, nil
	}
	cand, err := ice.UnmarshalCandidate(value)
	if err != nil {
		if errors.Is(err, ice.ErrUnknownCandidateTyp) || errors.Is(err, ice.ErrDetermineNetworkType) {
			return "", true, nil
		}
		return "", false, fmt.Errorf("%w: %w", ErrInvalidCandidate, err)
	}
	if c.UsernameFragment != nil && *c.UsernameFragment != "" {
		return *c.UsernameFragment, false, nil
	}
	if ext, ok := cand.GetExtension("ufrag"); ok {
		return ext.Value, false, nil
	}
	return "", false, nil
}

// localCandidateInit converts a gathered candidate for the wire and fills in
// usernameFragment (pion's ToJSON leaves it empty) so the far side can tell
// ICE generations apart.
func localCandidateInit(c *webrtc.ICECandidate) webrtc.ICECandidateInit {
	init := c.ToJSON()
	if cand, err := ice.UnmarshalCandidate(strings.TrimPrefix(init.Candidate, "candidate:")); err == nil {
		if ext, ok := cand.GetExtension("ufrag"); ok && ext.Value != "" {
			ufrag := ext.Value
			init.UsernameFragment = &ufrag
		}
	}
	return init
}

// descriptionUfrag returns the ICE ufrag of a parsed description: the
// session-level one, else the first media-level one.
func descriptionUfrag(d *sdp.SessionDescription) string {
	if d == nil {
		return ""
	}
	if u, ok := d.Attribute("ice-ufrag"); ok && u != "" {
		return u
	}
	for _, m := range d.MediaDescriptions {
		if u, ok := m.Attribute("ice-ufrag"); ok && u != "" {
			return u
		}
	}
	return ""
}

// checkMLine verifies that a candidate names an m-line of the description.
func checkMLine(c webrtc.ICECandidateInit, d *sdp.SessionDescription) error {
	if d == nil {
		return nil
	}
	if c.SDPMid != nil && *c.SDPMid != "" {
		for _, m := range d.MediaDescriptions {
			if mid, ok := m.Attribute(sdp.AttrKeyMID); ok && mid == *c.SDPMid {
				return nil
			}
		}
		return fmt.Errorf("%w: sdpMid %q", ErrUnknownMLine, *c.SDPMid)
	}
	if c.SDPMLineIndex != nil && int(*c.SDPMLineIndex) >= len(d.MediaDescriptions) {
		return fmt.Errorf("%w: sdpMLineIndex %d of %d", ErrUnknownMLine, *c.SDPMLineIndex, len(d.MediaDescriptions))
	}
	return nil
}
