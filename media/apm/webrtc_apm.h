//go:build cgo

// A C interface to WebRTC's audio processing module 0.3 (Debian's
// libwebrtc-audio-processing), whose API is C++.
#ifndef DIALTONE_WEBRTC_APM_H
#define DIALTONE_WEBRTC_APM_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wapm wapm;

// wapm_new makes a mono processor at rate Hz (10 ms frames); NULL on failure.
wapm *wapm_new(int rate);
void wapm_free(wapm *a);
// wapm_set switches the parts; suppression is 0 (low), 1 (moderate), 2 (high).
int wapm_set(wapm *a, int aec, int ns, int agc, int hpf, int suppression);
// wapm_render hands one 10 ms frame of the far end (what is played).
int wapm_render(wapm *a, const int16_t *pcm);
// wapm_capture processes one 10 ms frame of the microphone in place;
// delay_ms is the render-to-capture delay of the device.
int wapm_capture(wapm *a, int16_t *pcm, int delay_ms);
// wapm_erle returns the AEC's echo return loss enhancement in dB
// (instant in *instant, long-term average as the result); -100 if unknown.
int wapm_erle(wapm *a, int *instant);

#ifdef __cplusplus
}
#endif
#endif
