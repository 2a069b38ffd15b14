//go:build cgo

// C side of the malgo backend: miniaudio's device notification callback,
// which malgo does not bind, the silencing of libasound's error messages
// and the device threads' real-time priority. Declarations are in
// backend_malgo.go.

#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include "_cgo_export.h"

// The leading fields of miniaudio's ma_device_notification and ma_device
// (miniaudio.h of malgo v0.11.24), enough to reach the notification type
// and the device's pUserData. Every started device receives a "started"
// notification (the null backend's too, in every malgo test), and
// TestPulseSessionRouteEvents checks the types against a sound server.
typedef struct {
	void* pContext;
	int type;
	uint32_t sampleRate;
	int32_t state; // ma_atomic_device_state: an aligned 32-bit integer
	void* onData;
	void* onNotification;
	void* onStop;
	void* pUserData;
} dialtone_ma_device_head;

typedef struct {
	dialtone_ma_device_head* pDevice;
	int type;
} dialtone_ma_notification_head;

void dialtone_ma_notification(const void* p) {
	const dialtone_ma_notification_head* n = p;
	const uintptr_t* h = n->pDevice->pUserData;
	if (h != NULL) {
		dialtoneMalgoNotify(*h, n->type);
	}
}

static void dialtone_alsa_discard(const char* file, int line, const char* function, int err, const char* fmt, ...) {
	(void)file; (void)line; (void)function; (void)err; (void)fmt;
}

static pthread_once_t dialtone_alsa_once = PTHREAD_ONCE_INIT;

static void dialtone_alsa_install(void) {
	// The same library miniaudio loads at run time. The handle is kept
	// open so libasound, and the handler set in it, stay loaded after
	// miniaudio closes its own handle.
	void* lib = dlopen("libasound.so.2", RTLD_NOW | RTLD_GLOBAL);
	if (lib == NULL) {
		lib = dlopen("libasound.so", RTLD_NOW | RTLD_GLOBAL);
	}
	if (lib == NULL) {
		return; // no ALSA: nothing to silence
	}
	typedef int (*set_handler_fn)(void (*)(const char*, int, const char*, int, const char*, ...));
	set_handler_fn set = (set_handler_fn)dlsym(lib, "snd_lib_error_set_handler");
	if (set != NULL) {
		set(dialtone_alsa_discard);
	}
}

void dialtone_alsa_quiet(void) {
	pthread_once(&dialtone_alsa_once, dialtone_alsa_install);
}

// dialtone_thread_realtime puts the calling thread in the round-robin
// real-time class at priority prio, reset for any child it forks; it
// returns 0 or an error number. Linux only (elsewhere ENOSYS).
int dialtone_thread_realtime(int prio) {
#if defined(__linux__) && defined(SCHED_RESET_ON_FORK)
	struct sched_param p = {0};
	p.sched_priority = prio;
	return pthread_setschedparam(pthread_self(), SCHED_RR | SCHED_RESET_ON_FORK, &p);
#else
	(void)prio;
	return ENOSYS;
#endif
}
