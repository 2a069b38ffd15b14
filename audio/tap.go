package audio

import "context"

// Tap returns a [Backend] that opens its devices on b and shows every
// period passing through them to taps: taps.Capture sees each period a
// device captured, just before the device's own capture callback gets it;
// taps.Playback sees each period a device is about to play, just after the
// device's own playback callback filled it. Level meters, recorders and
// delay measurements hang here without touching the pipeline above the
// device, and work the same over a virtual backend and a sound card.
//
// The taps run on the device clock like any callback: they must return
// quickly, must not keep the slice, and must not modify it. They are called
// from every device the returned backend opened, so two devices (a
// capture and a playback one, or the old and new device during a switch)
// may call them at the same time. Either tap may be nil.
//
// Closing the returned backend closes b.
func Tap(b Backend, taps Callbacks) Backend {
	return &tapBackend{Backend: b, taps: taps}
}

type tapBackend struct {
	Backend
	taps Callbacks
}

// Open opens the device on the wrapped backend and taps it.
func (b *tapBackend) Open(ctx context.Context, cfg DeviceConfig) (Device, error) {
	d, err := b.Backend.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &tapDevice{Device: d, taps: b.taps}, nil
}

type tapDevice struct {
	Device
	taps Callbacks
}

// Start starts the device with cb wrapped by the taps.
func (d *tapDevice) Start(cb Callbacks) error {
	if capture, tap := cb.Capture, d.taps.Capture; capture != nil && tap != nil {
		cb.Capture = func(pcm []int16) {
			tap(pcm)
			capture(pcm)
		}
	}
	if playback, tap := cb.Playback, d.taps.Playback; playback != nil && tap != nil {
		cb.Playback = func(out []int16) {
			playback(out)
			tap(out)
		}
	}
	return d.Device.Start(cb)
}
