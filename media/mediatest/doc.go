// Package mediatest generates deterministic test audio and measures what
// came out of a voice path: the delay by cross-correlation and the SNR after
// alignment with least-squares gain, and, with [Timeline] and
// [MouthToEar], the mouth-to-ear delay between two points of a live call
// on the wall clock. It is shared by the media, call and example tests and
// the demo, the way net/http/httptest serves net/http users.
//
// All audio is 48 kHz mono int16, like package media.
package mediatest
