package audio

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Device is one opened sound device. Once started it calls the callbacks
// from its own clock, one period at a time, until it is closed or stops by
// itself (an interruption: Done closes and Err says why).
//
// A Device calls its callbacks from a single thread at a time. Callbacks
// must not call Close on their own device.
type Device interface {
	// Info describes the device.
	Info() DeviceInfo
	// Period is the callback period.
	Period() time.Duration
	// Start begins driving cb. A capture device uses cb.Capture, a playback
	// device cb.Playback. It fails with ErrStarted on a second call.
	Start(cb Callbacks) error
	// Done is closed when the device has stopped, by Close or by itself.
	Done() <-chan struct{}
	// Err is nil while running and after Close; after an interruption it
	// wraps ErrInterrupted or ErrDeviceRemoved.
	Err() error
	// Close stops the device and releases it. No callback runs after Close
	// returns. Close is idempotent.
	Close() error
}

// DeviceConfig says which device to open and how.
type DeviceConfig struct {
	// Direction is Capture or Playback (Duplex only for virtual devices).
	Direction Direction
	// Device selects by ID, then by exact name, then by case-insensitive
	// name. Empty selects the default device.
	Device string
	// Period is the callback period. Default DefaultPeriod (10 ms).
	Period time.Duration
}

// Backend lists and opens devices. Implementations are safe for concurrent use.
type Backend interface {
	// Name identifies the backend in logs and DeviceInfo ("virtual", "null", "alsa", ...).
	Name() string
	// Devices lists the capture and playback devices present now.
	Devices(ctx context.Context) ([]DeviceInfo, error)
	// Open opens (but does not start) a device.
	Open(ctx context.Context, cfg DeviceConfig) (Device, error)
	// Close releases the backend. Devices it opened should be closed first.
	Close() error
}

// Find picks the device matching sel in direction dir from list: by ID,
// then exact name, then case-insensitive name; an empty sel picks the
// default device (or the first one when none is marked default).
func Find(list []DeviceInfo, dir Direction, sel string) (DeviceInfo, error) {
	var first, def *DeviceInfo
	var byName, byFold *DeviceInfo
	for i := range list {
		d := &list[i]
		if d.Direction != dir {
			continue
		}
		if first == nil {
			first = d
		}
		if d.Default && def == nil {
			def = d
		}
		if sel == "" {
			continue
		}
		if d.ID == sel {
			return *d, nil
		}
		if d.Name == sel && byName == nil {
			byName = d
		}
		if strings.EqualFold(d.Name, sel) && byFold == nil {
			byFold = d
		}
	}
	switch {
	case sel == "" && def != nil:
		return *def, nil
	case sel == "" && first != nil:
		return *first, nil
	case byName != nil:
		return *byName, nil
	case byFold != nil:
		return *byFold, nil
	}
	if sel == "" {
		return DeviceInfo{}, fmt.Errorf("%w: no %s device", ErrNoDevice, dir)
	}
	return DeviceInfo{}, fmt.Errorf("%w: %s %q", ErrNoDevice, dir, sel)
}

// stopState is the Done/Err half of a Device.
type stopState struct {
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newStopState() stopState { return stopState{done: make(chan struct{})} }

// finish records err (nil for a requested close) and closes done, once.
func (s *stopState) finish(err error) bool {
	first := false
	s.once.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
		first = true
	})
	return first
}

// Done is closed when the device has stopped, by Close or by itself.
func (s *stopState) Done() <-chan struct{} { return s.done }

// Err is nil while running and after Close; after an interruption it
// says why (wrapping ErrInterrupted or ErrDeviceRemoved).
func (s *stopState) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
