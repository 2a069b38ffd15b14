package call

import (
	"time"

	"github.com/dialtone-dev/dialtone/media"
)

// newTone returns the call-progress tone k in the configured style, playing
// for d (0: until stopped).
func (c *Call) newTone(k toneKind, d time.Duration) pcmSource {
	var spec media.ToneSpec
	switch k {
	case toneRingback:
		spec = media.Ringback(c.cfg.ToneStyle)
	case toneBusy:
		spec = media.Busy(c.cfg.ToneStyle)
	default:
		spec = media.ErrorTone(c.cfg.ToneStyle)
	}
	spec.Duration = d
	return media.NewTone(spec)
}
