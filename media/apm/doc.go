// Package apm cleans the microphone before it is encoded: acoustic echo
// cancellation with the audio being played as the reference, noise
// suppression, automatic gain control and a high-pass filter.
//
// A [Processor] sits between the devices and the send path. The playback
// callback hands it every period it gives the device ([Processor.Playback]),
// the capture callback runs every captured period through it
// ([Processor.Capture]) before the Sender sees it, and [Processor.SetDelay]
// tells it how long the device takes from playing a sample to capturing
// its echo (the playback plus the capture latency).
//
// The processing is WebRTC's audio processing module, version 0.3 (Debian
// and Ubuntu's libwebrtc-audio-processing; the 1.x API differs and is not
// supported), through cgo: its echo canceller reaches the ERLE goal within
// a second and follows a delay that jumps, which speexdsp's does not (the
// harness in this package's tests measures both; docs/PERFORMANCE.md has
// the table). Built without cgo the Processor passes the microphone
// through untouched and [Available] reports false.
//
// Frames are 48 kHz mono int16. The library works on 10 ms blocks: periods
// that are whole multiples of 10 ms are processed in place; other periods
// pass through untouched.
package apm
