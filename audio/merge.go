package audio

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// Merge returns a [Backend] that offers the devices of all parts as one
// sound system, in order: Devices lists the first part's devices, then the
// second's, and so on, and Open opens a device on the part that listed it.
// Per direction the default device is the first part's default; later
// parts' defaults of that direction are listed as not default. So a
// program that puts a virtual device (a WAV file, a tone) in a first part
// replaces the system default of that direction while the system's other
// devices stay listed and can be switched to.
//
// Its Name joins the parts' names with "+". Closing it closes every part.
func Merge(parts ...Backend) Backend {
	return &mergedBackend{parts: slices.Clone(parts)}
}

type mergedBackend struct {
	parts []Backend
}

func (m *mergedBackend) Name() string {
	names := make([]string, len(m.parts))
	for i, b := range m.parts {
		names[i] = b.Name()
	}
	return strings.Join(names, "+")
}

func (m *mergedBackend) Devices(ctx context.Context) ([]DeviceInfo, error) {
	list, _, err := m.devices(ctx)
	return list, err
}

// devices lists every part's devices and, beside each, the part it
// belongs to.
func (m *mergedBackend) devices(ctx context.Context) ([]DeviceInfo, []Backend, error) {
	var list []DeviceInfo
	var owner []Backend
	var hasDefault Direction
	for _, b := range m.parts {
		ds, err := b.Devices(ctx)
		if err != nil {
			return nil, nil, err
		}
		var found Direction
		for _, d := range ds {
			if d.Default {
				if d.Direction&hasDefault != 0 {
					d.Default = false
				} else {
					found |= d.Direction
				}
			}
			list = append(list, d)
			owner = append(owner, b)
		}
		hasDefault |= found
	}
	return list, owner, nil
}

// Open finds cfg.Device among all parts' devices (see [Find]) and opens it
// on its part.
func (m *mergedBackend) Open(ctx context.Context, cfg DeviceConfig) (Device, error) {
	list, owner, err := m.devices(ctx)
	if err != nil {
		return nil, err
	}
	info, err := Find(list, cfg.Direction, cfg.Device)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(list, func(d DeviceInfo) bool { return d == info })
	cfg.Device = info.ID
	return owner[i].Open(ctx, cfg)
}

func (m *mergedBackend) Close() error {
	errs := make([]error, len(m.parts))
	for i, b := range m.parts {
		errs[i] = b.Close()
	}
	return errors.Join(errs...)
}
