//go:build cgo

package apm

/*
#cgo pkg-config: webrtc-audio-processing
#cgo CXXFLAGS: -std=c++11
#include <stdlib.h>
#include "webrtc_apm.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"
)

const engineAvailable = true

func newEngine() (engine, error) { return newWebRTC(suppressModerate) }

const (
	suppressLow = iota
	suppressModerate
	suppressHigh
)

// webrtcEngine is WebRTC's audio processing module 0.3.
type webrtcEngine struct {
	a           *C.wapm
	suppression int
}

func newWebRTC(suppression int) (*webrtcEngine, error) {
	a := C.wapm_new(SampleRate)
	if a == nil {
		return nil, errors.New("apm: webrtc audio processing: initialisation failed")
	}
	return &webrtcEngine{a: a, suppression: suppression}, nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func (e *webrtcEngine) set(cfg Config) error {
	if rc := C.wapm_set(e.a, cbool(cfg.EchoCancel), cbool(cfg.NoiseSuppress), cbool(cfg.GainControl), cbool(cfg.HighPass), C.int(e.suppression)); rc != 0 {
		return fmt.Errorf("apm: webrtc audio processing: configure: error %d", int(rc))
	}
	return nil
}

func (e *webrtcEngine) render(frame []int16) {
	C.wapm_render(e.a, (*C.int16_t)(unsafe.Pointer(&frame[0])))
}

func (e *webrtcEngine) capture(frame []int16, delay time.Duration) {
	C.wapm_capture(e.a, (*C.int16_t)(unsafe.Pointer(&frame[0])), C.int(delay/time.Millisecond))
}

func (e *webrtcEngine) erle() float64 {
	var inst C.int
	avg := C.wapm_erle(e.a, &inst)
	if avg <= -100 {
		return math.NaN()
	}
	return float64(avg)
}

func (e *webrtcEngine) close() { C.wapm_free(e.a) }
