//go:build cgo

#include "webrtc_apm.h"

#include <string.h>

#include <webrtc/modules/audio_processing/include/audio_processing.h>
#include <webrtc/modules/interface/module_common_types.h>

struct wapm {
	webrtc::AudioProcessing *apm;
	webrtc::AudioFrame frame;
	webrtc::AudioFrame rev;
	int rate;
	int samples;
};

extern "C" wapm *wapm_new(int rate) {
	webrtc::Config cfg;
	// The extended filter covers 128 ms past the reported delay (the normal
	// one 48 ms); delay-agnostic mode finds the delay itself when the
	// reported one is off or jumps (a device switch).
	cfg.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(true));
	cfg.Set<webrtc::DelayAgnostic>(new webrtc::DelayAgnostic(true));
	// The experimental AGC drives an analog mixer level we do not have.
	cfg.Set<webrtc::ExperimentalAgc>(new webrtc::ExperimentalAgc(false));
	webrtc::AudioProcessing *apm = webrtc::AudioProcessing::Create(cfg);
	if (!apm) return NULL;
	if (apm->Initialize(rate, rate, rate, webrtc::AudioProcessing::kMono,
	                    webrtc::AudioProcessing::kMono,
	                    webrtc::AudioProcessing::kMono) != 0) {
		delete apm;
		return NULL;
	}
	wapm *a = new wapm;
	a->apm = apm;
	a->rate = rate;
	a->samples = rate / 100;
	apm->echo_cancellation()->enable_metrics(true);
	apm->echo_cancellation()->enable_delay_logging(true);
	apm->gain_control()->set_mode(webrtc::GainControl::kAdaptiveDigital);
	apm->gain_control()->set_target_level_dbfs(3);
	apm->gain_control()->set_compression_gain_db(9);
	apm->gain_control()->enable_limiter(true);
	apm->noise_suppression()->set_level(webrtc::NoiseSuppression::kModerate);
	return a;
}

extern "C" void wapm_free(wapm *a) {
	if (!a) return;
	delete a->apm;
	delete a;
}

extern "C" int wapm_set(wapm *a, int aec, int ns, int agc, int hpf, int suppression) {
	webrtc::EchoCancellation::SuppressionLevel lv = webrtc::EchoCancellation::kModerateSuppression;
	if (suppression == 0) lv = webrtc::EchoCancellation::kLowSuppression;
	if (suppression == 2) lv = webrtc::EchoCancellation::kHighSuppression;
	int err = 0;
	if (int e = a->apm->echo_cancellation()->set_suppression_level(lv)) err = e;
	if (int e = a->apm->echo_cancellation()->Enable(aec != 0)) err = e;
	if (int e = a->apm->noise_suppression()->Enable(ns != 0)) err = e;
	if (int e = a->apm->gain_control()->Enable(agc != 0)) err = e;
	if (int e = a->apm->high_pass_filter()->Enable(hpf != 0)) err = e;
	return err;
}

static void fill(webrtc::AudioFrame *f, const int16_t *pcm, int samples, int rate) {
	f->UpdateFrame(0, 0, pcm, samples, rate, webrtc::AudioFrame::kNormalSpeech,
	               webrtc::AudioFrame::kVadUnknown, 1);
}

extern "C" int wapm_render(wapm *a, const int16_t *pcm) {
	fill(&a->rev, pcm, a->samples, a->rate);
	return a->apm->ProcessReverseStream(&a->rev);
}

extern "C" int wapm_capture(wapm *a, int16_t *pcm, int delay_ms) {
	fill(&a->frame, pcm, a->samples, a->rate);
	// Without a delay set before every frame the AEC returns an error and
	// leaves the frame untouched.
	a->apm->set_stream_delay_ms(delay_ms);
	int err = a->apm->ProcessStream(&a->frame);
	if (err == 0) memcpy(pcm, a->frame.data_, a->samples * sizeof(int16_t));
	return err;
}

extern "C" int wapm_erle(wapm *a, int *instant) {
	webrtc::EchoCancellation::Metrics m;
	if (!a->apm->echo_cancellation()->is_enabled() ||
	    a->apm->echo_cancellation()->GetMetrics(&m) != 0) {
		*instant = -100;
		return -100;
	}
	*instant = m.echo_return_loss_enhancement.instant;
	return m.echo_return_loss_enhancement.average;
}
