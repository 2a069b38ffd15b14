// Package audio is dialtone's device layer: it enumerates sound devices,
// opens them by ID, name or default, and drives a pair of callbacks (capture
// and playback) from the device's own clock, at 48 kHz mono int16 in fixed
// periods (10 ms by default).
//
// The shape follows libwebrtc's AudioDeviceModule: the device owns the
// clock, and the pipeline above it (package media) is just two functions,
// [Callbacks].Capture ("here is one period of microphone PCM") and
// [Callbacks].Playback ("fill one period of speaker PCM"). Nothing on that
// path hops goroutines.
//
// # Backends
//
// A [Backend] lists devices and opens them. Two implementations exist:
//
//   - malgo (miniaudio, cgo builds only): the system's sound devices
//     through the first of miniaudio's backends that starts (PulseAudio,
//     ALSA, JACK on Linux; the backend is named after it), or
//     miniaudio's null backend, which keeps real-time callbacks going on a
//     machine without a sound card. [NewBackend] with [KindAuto] probes the
//     system devices and falls back to the null backend (logged), never
//     failing just because a machine is headless.
//   - [VirtualBackend] (pure Go, always available): clock-driven [Virtual]
//     devices that read a PCM source and write a PCM sink. Tests, examples
//     and headless servers use it; tests can add and remove devices, change
//     the default and interrupt a running device to exercise route changes.
//
// The package builds with CGO_ENABLED=0; then [KindAuto] yields the virtual
// backend and [KindMalgo]/[KindNull] report [ErrUnavailable].
//
// # Sessions
//
// [Open] returns a [Session]: it owns the user's [Callbacks] and the current
// capture and playback devices. The input or output can be switched while a
// call runs ([Session.SetCapture], [Session.SetPlayback]); the new device is
// opened and started first, then swapped in atomically, then the old one is
// closed, so the callbacks see at most a period or two of discontinuity and
// are never called concurrently. The session polls the device list and
// reports changes as [Event]s; when the device in use disappears it moves to
// the default device, and when a device stops by itself (interruption) it
// reports it and reopens. The sound server's own notices about a device in
// use (PulseAudio moving its stream, suspending and resuming it) arrive
// as [RouteChanged] events. Events are delivered on [Session.Events], which
// never drops an event and never blocks the audio clock.
//
// Every call into miniaudio that can wait on the sound server (opening,
// starting, closing a device, listing devices) is bounded and reports
// [ErrTimeout] rather than hang, and a device whose callbacks stop without
// a word from miniaudio (its sink unloaded, the server killed) is reported
// interrupted, so a session always ends up on a working device or retrying.
// The package's tests run these cases against a private PulseAudio server
// (internal/pulsetest).
//
// # Composing backends
//
// [Merge] offers several backends as one (a virtual device for a WAV file
// beside the system's devices), [Tap] shows every period a backend's
// devices capture and play to a meter, recorder or measurement, and
// [DelayLine] joins a virtual speaker to a virtual microphone a fixed delay
// later (an echo line).
package audio
