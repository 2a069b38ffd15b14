package audio

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/dialtone-dev/dialtone/media/pcm"
)

// VirtualDevice describes one device a [VirtualBackend] offers.
type VirtualDevice struct {
	// ID identifies the device (required, unique per backend).
	ID string
	// Name is the display name; default ID.
	Name string
	// Direction is Capture or Playback.
	Direction Direction
	// Default makes it the default device of its direction.
	Default bool
	// Source feeds a capture device (nil: silence).
	Source pcm.Reader
	// Sink receives what a playback device plays (nil: discard).
	Sink pcm.Writer
}

// VirtualBackendConfig configures a [VirtualBackend].
type VirtualBackendConfig struct {
	// Devices offered at start. Default: a capture device "virtual-mic"
	// ("Virtual Microphone", silence) and a playback device
	// "virtual-speaker" ("Virtual Speaker", discard), both default.
	Devices []VirtualDevice
	// Clock paces every device; default SystemClock().
	Clock Clock
	// Logger; default discards.
	Logger *slog.Logger
}

// VirtualBackend is a pure-Go [Backend] of [Virtual] devices. Besides
// serving headless programs it is a fake sound system for tests: devices
// can be added and removed, the default changed and a running device
// interrupted, exactly as a user plugging a headset would.
type VirtualBackend struct {
	clock Clock
	log   *slog.Logger

	mu     sync.Mutex
	devs   []VirtualDevice
	open   map[*Virtual]string
	closed bool
}

// NewVirtualBackend returns a virtual backend configured by cfg.
func NewVirtualBackend(cfg VirtualBackendConfig) *VirtualBackend {
	b := &VirtualBackend{clock: cfg.Clock, log: cfg.Logger, open: map[*Virtual]string{}}
	if b.clock == nil {
		b.clock = SystemClock()
	}
	if b.log == nil {
		b.log = discardLogger()
	}
	devs := cfg.Devices
	if devs == nil {
		devs = []VirtualDevice{
			{ID: "virtual-mic", Name: "Virtual Microphone", Direction: Capture, Default: true},
			{ID: "virtual-speaker", Name: "Virtual Speaker", Direction: Playback, Default: true},
		}
	}
	for _, d := range devs {
		_ = b.Add(d)
	}
	return b
}

// Name implements [Backend]; it returns "virtual".
func (b *VirtualBackend) Name() string { return "virtual" }

// Devices implements [Backend].
func (b *VirtualBackend) Devices(ctx context.Context) ([]DeviceInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	out := make([]DeviceInfo, 0, len(b.devs))
	for _, d := range b.devs {
		out = append(out, DeviceInfo{ID: d.ID, Name: d.Name, Direction: d.Direction, Default: d.Default, Backend: "virtual"})
	}
	return out, nil
}

// Open implements [Backend].
func (b *VirtualBackend) Open(ctx context.Context, cfg DeviceConfig) (Device, error) {
	list, err := b.Devices(ctx)
	if err != nil {
		return nil, err
	}
	info, err := Find(list, cfg.Direction, cfg.Device)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.index(info.ID)
	if i < 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoDevice, info.ID)
	}
	d := b.devs[i]
	v, err := NewVirtual(VirtualConfig{
		ID: d.ID, Name: d.Name, Direction: d.Direction, Default: d.Default,
		Period: cfg.Period, Clock: b.clock, Source: d.Source, Sink: d.Sink, Logger: b.log,
		onClose: b.forget,
	})
	if err != nil {
		return nil, err
	}
	b.open[v] = d.ID
	return v, nil
}

func (b *VirtualBackend) forget(v *Virtual) {
	b.mu.Lock()
	delete(b.open, v)
	b.mu.Unlock()
}

func (b *VirtualBackend) index(id string) int {
	return slices.IndexFunc(b.devs, func(d VirtualDevice) bool { return d.ID == id })
}

// Add offers a new device (or replaces the one with the same ID). A
// Default device takes the default role from the others of its direction.
func (b *VirtualBackend) Add(d VirtualDevice) error {
	if d.ID == "" || (d.Direction != Capture && d.Direction != Playback) {
		return fmt.Errorf("%w: virtual device needs an ID and a direction of capture or playback", ErrFormat)
	}
	if d.Name == "" {
		d.Name = d.ID
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := b.index(d.ID); i >= 0 {
		b.devs[i] = d
	} else {
		b.devs = append(b.devs, d)
	}
	if d.Default {
		b.setDefaultLocked(d.Direction, d.ID)
	} else {
		b.ensureDefaultLocked(d.Direction)
	}
	return nil
}

// Remove takes a device away. Open instances of it stop with
// ErrDeviceRemoved; if it was the default, the next device of its
// direction becomes the default.
func (b *VirtualBackend) Remove(id string) {
	b.mu.Lock()
	i := b.index(id)
	if i < 0 {
		b.mu.Unlock()
		return
	}
	dir := b.devs[i].Direction
	b.devs = slices.Delete(b.devs, i, i+1)
	b.ensureDefaultLocked(dir)
	victims := b.instancesLocked(id)
	b.mu.Unlock()
	for _, v := range victims {
		v.Interrupt(fmt.Errorf("%w: %s", ErrDeviceRemoved, id))
	}
}

// SetDefault makes id the default device of its direction.
func (b *VirtualBackend) SetDefault(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.index(id)
	if i < 0 {
		return fmt.Errorf("%w: %s", ErrNoDevice, id)
	}
	b.setDefaultLocked(b.devs[i].Direction, id)
	return nil
}

// Interrupt stops every open instance of id with err (ErrInterrupted when
// nil), as a driver error would. The device stays listed.
func (b *VirtualBackend) Interrupt(id string, err error) {
	b.mu.Lock()
	victims := b.instancesLocked(id)
	b.mu.Unlock()
	for _, v := range victims {
		v.Interrupt(err)
	}
}

// Instances returns the open (not yet closed) instances of device id.
func (b *VirtualBackend) Instances(id string) []*Virtual {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.instancesLocked(id)
}

func (b *VirtualBackend) instancesLocked(id string) []*Virtual {
	var out []*Virtual
	for v, vid := range b.open {
		if vid == id {
			out = append(out, v)
		}
	}
	return out
}

func (b *VirtualBackend) setDefaultLocked(dir Direction, id string) {
	for i := range b.devs {
		if b.devs[i].Direction == dir {
			b.devs[i].Default = b.devs[i].ID == id
		}
	}
}

func (b *VirtualBackend) ensureDefaultLocked(dir Direction) {
	first := -1
	for i, d := range b.devs {
		if d.Direction != dir {
			continue
		}
		if d.Default {
			return
		}
		if first < 0 {
			first = i
		}
	}
	if first >= 0 {
		b.devs[first].Default = true
	}
}

// Close implements [Backend]. Devices still open keep running until closed.
func (b *VirtualBackend) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}
