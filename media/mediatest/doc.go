// Package mediatest generates deterministic test audio and measures what
// came out of a voice path: the delay by cross-correlation, the SNR after
// alignment with least-squares gain, the speech quality a listener hears
// ([Quality], ViSQOL v3's MOS-LQO), and, with [Timeline] and [MouthToEar],
// the mouth-to-ear delay between two points of a live call on the wall
// clock. SNR answers "did the right audio arrive"; codec settings and
// playout are judged on [Quality], over speech that espeak-ng synthesises at
// test time ([Speech], [SpeechSet]). It is shared by the media, call and
// example tests and the demo, the way net/http/httptest serves net/http
// users.
//
// All audio is 48 kHz mono int16, like package media.
package mediatest
