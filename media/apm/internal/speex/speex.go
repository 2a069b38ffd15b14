//go:build cgo

package speex

/*
#cgo pkg-config: speexdsp
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

static int spx_ctl_int(SpeexPreprocessState *st, int req, int v) {
	return speex_preprocess_ctl(st, req, &v);
}
static void spx_set_rate(SpeexEchoState *st, int rate) {
	speex_echo_ctl(st, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
}
*/
import "C"

import (
	"math"
	"time"
	"unsafe"
)

// Engine is speexdsp's echo canceller (MDF) followed by its preprocessor
// (noise suppression, residual echo suppression, AGC), on blocks of a
// fixed size. The canceller takes no delay: the Engine delays the
// reference by the delay it is given, so the filter only has to span the
// room's tail (plus whatever the delay is off by).
type Engine struct {
	echo  *C.SpeexEchoState
	pre   *C.SpeexPreprocessState
	rate  int
	block int
	aec   bool
	pre1  bool // the preprocessor runs
	// ref is the render FIFO, primed with delay samples of silence.
	ref      []int16
	delay    time.Duration
	out      []int16
	refBlock []int16
	// echo removed by the canceller stage, for ERLE.
	pin, pout float64
}

// New returns an Engine for blocks of block samples at rate Hz whose
// filter spans tail.
func New(rate, block int, tail time.Duration) *Engine {
	e := &Engine{
		echo:     C.speex_echo_state_init(C.int(block), C.int(int64(tail)*int64(rate)/int64(time.Second))),
		pre:      C.speex_preprocess_state_init(C.int(block), C.int(rate)),
		rate:     rate,
		block:    block,
		out:      make([]int16, block),
		refBlock: make([]int16, block),
		delay:    -1,
	}
	C.spx_set_rate(e.echo, C.int(rate))
	C.speex_preprocess_ctl(e.pre, C.SPEEX_PREPROCESS_SET_ECHO_STATE, unsafe.Pointer(e.echo))
	return e
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Set switches the echo canceller, the denoiser and the AGC. The
// preprocessor's residual echo suppression runs only with its denoiser
// on, so echo cancellation turns the denoiser on too.
func (e *Engine) Set(echoCancel, denoise, agc bool) {
	e.aec = echoCancel
	e.pre1 = echoCancel || denoise || agc
	C.spx_ctl_int(e.pre, C.SPEEX_PREPROCESS_SET_DENOISE, cbool(denoise || echoCancel))
	C.spx_ctl_int(e.pre, C.SPEEX_PREPROCESS_SET_AGC, cbool(agc))
}

func (e *Engine) samples(d time.Duration) int {
	return int(int64(d) * int64(e.rate) / int64(time.Second))
}

// Render takes one block of the far end as played.
func (e *Engine) Render(frame []int16) {
	e.ref = append(e.ref, frame...)
	if limit := e.samples(e.delay) + 20*e.block; len(e.ref) > limit {
		e.ref = e.ref[len(e.ref)-limit:]
	}
}

// Capture processes one block of the microphone in place, with the
// reference delayed by delay.
func (e *Engine) Capture(frame []int16, delay time.Duration) {
	if delay != e.delay {
		e.delay = delay
		e.ref = append(make([]int16, e.samples(delay)), e.ref...)
	}
	ref := e.refBlock
	clear(ref)
	n := copy(ref, e.ref)
	e.ref = e.ref[:copy(e.ref, e.ref[n:])]
	if e.aec {
		C.speex_echo_cancellation(e.echo, (*C.spx_int16_t)(unsafe.Pointer(&frame[0])),
			(*C.spx_int16_t)(unsafe.Pointer(&ref[0])), (*C.spx_int16_t)(unsafe.Pointer(&e.out[0])))
		var pi, po float64
		for i := range frame {
			pi += float64(frame[i]) * float64(frame[i])
			po += float64(e.out[i]) * float64(e.out[i])
		}
		e.pin, e.pout = 0.99*e.pin+pi, 0.99*e.pout+po
		copy(frame, e.out)
	}
	if e.pre1 {
		C.speex_preprocess_run(e.pre, (*C.spx_int16_t)(unsafe.Pointer(&frame[0])))
	}
}

// ERLE is the canceller stage's echo return loss enhancement in dB, a
// running average; NaN before it has run.
func (e *Engine) ERLE() float64 {
	if e.pout == 0 {
		return math.NaN()
	}
	return 10 * math.Log10(e.pin/e.pout)
}

// Close releases speexdsp's state.
func (e *Engine) Close() {
	C.speex_preprocess_state_destroy(e.pre)
	C.speex_echo_state_destroy(e.echo)
}
