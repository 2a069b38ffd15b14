// Package pcm is the audio stream that dialtone's device side (package
// audio) and media side (package media) hand each other: 48 kHz mono int16
// samples, moved by ReadPCM and WritePCM. It holds the two interfaces and the
// two in-memory ends that prompts, tests and headless programs need: a
// [Player] plays samples, a [Recorder] keeps them.
//
// It is its own package so that audio (which must not know codecs or RTP)
// and media (which must not know devices) share one definition without
// importing each other. It is pure Go and imports nothing of dialtone.
package pcm
