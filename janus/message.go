package janus

import (
	"encoding/json"

	"github.com/pion/webrtc/v4"
)

// message is one message from Janus, of any kind. Fields absent from a kind
// stay zero. IDs decode into uint64 exactly (no float64 detour).
type message struct {
	Janus       string `json:"janus"`
	Transaction string `json:"transaction"`
	SessionID   uint64 `json:"session_id"`
	Sender      uint64 `json:"sender"`
	Data        struct {
		ID uint64 `json:"id"`
	} `json:"data"`
	Error *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"error"`
	PluginData *struct {
		Plugin string          `json:"plugin"`
		Data   json.RawMessage `json:"data"`
	} `json:"plugindata"`
	JSEP      *webrtc.SessionDescription `json:"jsep"`
	Candidate *trickleCandidate          `json:"candidate"`
	Reason    string                     `json:"reason"`
	Type      string                     `json:"type"`
	Receiving *bool                      `json:"receiving"`
	Uplink    *bool                      `json:"uplink"`
	Lost      int                        `json:"lost"`
}

// trickleCandidate is a candidate in a "trickle" message: one candidate, or
// {"completed": true} for the end of candidates.
type trickleCandidate struct {
	Candidate     string  `json:"candidate,omitempty"`
	SDPMid        *string `json:"sdpMid,omitempty"`
	SDPMLineIndex *uint16 `json:"sdpMLineIndex,omitempty"`
	Completed     bool    `json:"completed,omitempty"`
}

// err returns the message's error, if it is an error reply.
func (m *message) err() error {
	if m.Janus != "error" {
		return nil
	}
	if m.Error == nil {
		return &Error{Code: 490, Reason: "error without details"}
	}
	return &Error{Code: m.Error.Code, Reason: m.Error.Reason}
}

// pluginData returns the plugin's payload, or nil.
func (m *message) pluginData() json.RawMessage {
	if m.PluginData == nil {
		return nil
	}
	return m.PluginData.Data
}

// candidateInit converts a trickled candidate for pion; ok is false for the
// end of candidates.
func (c *trickleCandidate) candidateInit() (init webrtc.ICECandidateInit, ok bool) {
	if c == nil || c.Completed || c.Candidate == "" {
		return init, false
	}
	return webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}, true
}
