package audio

import (
	"fmt"
	"time"
)

// EventType says what an [Event] reports.
type EventType uint8

const (
	// DeviceAdded: a device appeared (Device).
	DeviceAdded EventType = iota + 1
	// DeviceRemoved: a device disappeared (Device).
	DeviceRemoved
	// DefaultChanged: the system default of Direction is now Device (was Previous).
	DefaultChanged
	// DeviceSwitched: the session now uses Device for Direction instead of
	// Previous, for Reason.
	DeviceSwitched
	// DeviceInterrupted: the device in use (Device) stopped by itself (Err).
	// The session reopens it, or the default when it is gone.
	DeviceInterrupted
	// DeviceRecovered: after an interruption the session runs again, on
	// Device (Previous is the interrupted one; Reason is ReasonRemoved when
	// it had to move to the default).
	DeviceRecovered
	// RouteChanged: the sound server changed the route of the device in
	// use (Device) without the session moving: Reason is ReasonRerouted
	// (the stream now plays to, or records from, another device),
	// ReasonSuspended (it stopped delivering audio until resumed) or
	// ReasonResumed.
	RouteChanged
)

// String returns the event type's name.
func (t EventType) String() string {
	switch t {
	case DeviceAdded:
		return "device-added"
	case DeviceRemoved:
		return "device-removed"
	case DefaultChanged:
		return "default-changed"
	case DeviceSwitched:
		return "device-switched"
	case DeviceInterrupted:
		return "device-interrupted"
	case DeviceRecovered:
		return "device-recovered"
	case RouteChanged:
		return "route-changed"
	}
	return fmt.Sprintf("event(%d)", uint8(t))
}

// Reason says why a session moved to another device, or what the sound
// server did to the route of the device in use.
type Reason string

const (
	// ReasonUser: SetCapture/SetPlayback.
	ReasonUser Reason = "user"
	// ReasonRemoved: the device in use disappeared; the session moved to the default.
	ReasonRemoved Reason = "removed"
	// ReasonDefaultChanged: the session follows the default and the default changed.
	ReasonDefaultChanged Reason = "default-changed"
	// ReasonRecovered: the device was reopened after an interruption.
	ReasonRecovered Reason = "recovered"
	// ReasonRerouted: the sound server moved the device's stream elsewhere.
	ReasonRerouted Reason = "rerouted"
	// ReasonSuspended: the sound server suspended the device.
	ReasonSuspended Reason = "suspended"
	// ReasonResumed: the sound server resumed the device.
	ReasonResumed Reason = "resumed"
)

// Event is a device change seen by a [Session].
type Event struct {
	// Type says what happened.
	Type EventType
	// Direction is the direction concerned.
	Direction Direction
	// Device is the device the event is about (see EventType).
	Device DeviceInfo
	// Previous is the device before the change, when there is one.
	Previous DeviceInfo
	// Reason is set on DeviceSwitched, DeviceRecovered and RouteChanged.
	Reason Reason
	// Err is set on DeviceInterrupted.
	Err error
	// Time is when the session noticed.
	Time time.Time
}

// String returns a one-line description for logs.
func (e Event) String() string {
	s := fmt.Sprintf("%s %s %q", e.Type, e.Direction, e.Device.Name)
	if e.Previous.ID != "" {
		s += fmt.Sprintf(" (was %q)", e.Previous.Name)
	}
	if e.Reason != "" {
		s += " reason=" + string(e.Reason)
	}
	if e.Err != nil {
		s += " err=" + e.Err.Error()
	}
	return s
}
