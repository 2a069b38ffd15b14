//go:build cgo

package apm

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

// speexEngine is speexdsp's echo canceller (MDF) followed by its
// preprocessor (noise suppression, residual echo suppression, AGC). The
// canceller takes no delay: the engine delays the reference by the
// reported delay itself, so the filter only has to span the room's tail
// (plus whatever the delay is off by).
type speexEngine struct {
	echo *C.SpeexEchoState
	pre  *C.SpeexPreprocessState
	cfg  Config
	// ref is the render FIFO, primed with delay samples of silence.
	ref      []int16
	delay    time.Duration
	out      []int16
	refBlock []int16
	// echo removed by the canceller stage, for erle().
	pin, pout float64
}

func newSpeex(tail time.Duration) *speexEngine {
	e := &speexEngine{
		echo:     C.speex_echo_state_init(block, C.int(int64(tail)*SampleRate/int64(time.Second))),
		pre:      C.speex_preprocess_state_init(block, SampleRate),
		out:      make([]int16, block),
		refBlock: make([]int16, block),
		delay:    -1,
	}
	C.spx_set_rate(e.echo, SampleRate)
	C.speex_preprocess_ctl(e.pre, C.SPEEX_PREPROCESS_SET_ECHO_STATE, unsafe.Pointer(e.echo))
	return e
}

func (e *speexEngine) set(cfg Config) error {
	e.cfg = cfg
	// The preprocessor's residual echo suppression runs only with its
	// denoiser on, so echo cancellation turns the denoiser on too.
	C.spx_ctl_int(e.pre, C.SPEEX_PREPROCESS_SET_DENOISE, C.int(cbool(cfg.NoiseSuppress || cfg.EchoCancel)))
	C.spx_ctl_int(e.pre, C.SPEEX_PREPROCESS_SET_AGC, C.int(cbool(cfg.GainControl)))
	return nil
}

func (e *speexEngine) render(frame []int16) {
	e.ref = append(e.ref, frame...)
	if limit := samplesOf(e.delay) + 20*block; len(e.ref) > limit {
		e.ref = e.ref[len(e.ref)-limit:]
	}
}

func (e *speexEngine) capture(frame []int16, delay time.Duration) {
	if delay != e.delay {
		e.delay = delay
		e.ref = append(make([]int16, samplesOf(delay)), e.ref...)
	}
	ref := e.refBlock
	clear(ref)
	n := copy(ref, e.ref)
	e.ref = e.ref[:copy(e.ref, e.ref[n:])]
	if e.cfg.EchoCancel {
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
	if e.cfg.EchoCancel || e.cfg.NoiseSuppress || e.cfg.GainControl {
		C.speex_preprocess_run(e.pre, (*C.spx_int16_t)(unsafe.Pointer(&frame[0])))
	}
}

func (e *speexEngine) erle() float64 {
	if e.pout == 0 {
		return math.NaN()
	}
	return 10 * math.Log10(e.pin/e.pout)
}

func (e *speexEngine) close() {
	C.speex_preprocess_state_destroy(e.pre)
	C.speex_echo_state_destroy(e.echo)
}
