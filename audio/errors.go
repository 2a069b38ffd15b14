package audio

import "errors"

var (
	// ErrClosed is returned by operations on a closed session, device or backend.
	ErrClosed = errors.New("audio: closed")
	// ErrNoDevice is returned when no device matches the requested ID or name,
	// or when a backend has no device of the requested direction.
	ErrNoDevice = errors.New("audio: no such device")
	// ErrUnavailable is returned when the requested backend is not compiled in
	// (malgo without cgo) or cannot be initialised.
	ErrUnavailable = errors.New("audio: backend unavailable")
	// ErrInterrupted is the error a device reports when it stopped without
	// being closed (device unplugged, server went away, driver error).
	ErrInterrupted = errors.New("audio: device interrupted")
	// ErrDeviceRemoved is the error a device reports when it stopped because
	// it disappeared from the system.
	ErrDeviceRemoved = errors.New("audio: device removed")
	// ErrStarted is returned by Device.Start on a device that was already started.
	ErrStarted = errors.New("audio: device already started")
	// ErrFormat is returned for a configuration the library does not support
	// (a period that is not a whole number of milliseconds, say).
	ErrFormat = errors.New("audio: unsupported format")
	// ErrTimeout is returned when a call into the system's audio layer
	// (opening, starting, closing a device, listing devices) did not
	// return in time: the sound server hangs, or the stream under the
	// device is gone. The call is abandoned, not waited for.
	ErrTimeout = errors.New("audio: device call timed out")
)
