package media

import (
	"fmt"
	"math"
)

// G.711 μ-law (ITU-T G.711), pure Go: the codec every build has.

func linearToULaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := 0
	if v < 0 {
		v = -v
		sign = 0x80
	}
	if v > clip {
		v = clip
	}
	v += bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

func uLawToLinear(u byte) int16 {
	u = ^u
	t := (int(u&0x0f) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

type pcmuEncoder struct {
	frame int
	dec   *decimator
	tmp   []int16
}

func newPCMUEncoder(cfg EncoderConfig) *pcmuEncoder {
	frame := SampleRate * cfg.FrameMillis / 1000
	return &pcmuEncoder{frame: frame, dec: newDecimator(), tmp: make([]int16, frame/resampleRatio)}
}

func (e *pcmuEncoder) Info() CodecInfo { return PCMUInfo() }

func (e *pcmuEncoder) Encode(pcm []int16, out []byte) (int, error) {
	if len(pcm) != e.frame {
		return 0, fmt.Errorf("%w: %d samples, want %d", ErrFrameSize, len(pcm), e.frame)
	}
	n := e.dec.process(pcm, e.tmp)
	if len(out) < n {
		return 0, fmt.Errorf("media: pcmu: output buffer %d < %d", len(out), n)
	}
	for i, s := range e.tmp[:n] {
		out[i] = linearToULaw(s)
	}
	return n, nil
}

func (e *pcmuEncoder) SetPacketLoss(int) error { return nil }
func (e *pcmuEncoder) Close() error            { return nil }

// pcmuDecoder decodes μ-law and conceals losses by repeating the last pitch
// period of the decoded signal (in the spirit of G.711 Appendix I), fading to
// silence over 60 ms of consecutive loss.
type pcmuDecoder struct {
	up      *interpolator
	tmp     []int16
	hist    []int16 // the last 40 ms of output, for pitch repetition
	period  int     // pitch period used by the running concealment
	pos     int     // read position within the repeated period
	lostRun int     // samples concealed in a row
}

const pcmuHist = 1920

func newPCMUDecoder() *pcmuDecoder {
	return &pcmuDecoder{up: newInterpolator(), hist: make([]int16, pcmuHist)}
}

func (d *pcmuDecoder) Info() CodecInfo { return PCMUInfo() }

func (d *pcmuDecoder) Duration(payload []byte) int { return len(payload) * resampleRatio }

func (d *pcmuDecoder) Decode(payload []byte, pcm []int16) (int, error) {
	n := len(payload) * resampleRatio
	if len(pcm) < n {
		return 0, fmt.Errorf("media: pcmu: pcm buffer %d < %d", len(pcm), n)
	}
	if cap(d.tmp) < len(payload) {
		d.tmp = make([]int16, len(payload))
	}
	d.tmp = d.tmp[:len(payload)]
	for i, b := range payload {
		d.tmp[i] = uLawToLinear(b)
	}
	d.up.process(d.tmp, pcm[:n])
	if d.lostRun > 0 {
		// Smooth the seam between concealment and the first good frame.
		fade := min(n, 96)
		for i := 0; i < fade; i++ {
			c := d.concealSample()
			w := float32(i) / float32(fade)
			pcm[i] = sat16(float32(c)*(1-w) + float32(pcm[i])*w)
		}
	}
	d.lostRun = 0
	d.remember(pcm[:n])
	return n, nil
}

func (d *pcmuDecoder) remember(p []int16) {
	if len(p) >= len(d.hist) {
		copy(d.hist, p[len(p)-len(d.hist):])
		return
	}
	copy(d.hist, d.hist[len(p):])
	copy(d.hist[len(d.hist)-len(p):], p)
}

// concealSample returns the next sample of the periodic extension.
func (d *pcmuDecoder) concealSample() int16 {
	if d.period == 0 {
		return 0
	}
	s := d.hist[len(d.hist)-d.period+d.pos]
	d.pos = (d.pos + 1) % d.period
	return s
}

func (d *pcmuDecoder) DecodePLC(pcm []int16) error {
	if d.lostRun == 0 {
		d.period = pitchPeriod(d.hist)
		d.pos = 0
	}
	const fadeLen = 2880 // 60 ms to silence
	for i := range pcm {
		g := 1 - float32(d.lostRun)/fadeLen
		if g < 0 {
			g = 0
		}
		pcm[i] = sat16(float32(d.concealSample()) * g)
		d.lostRun++
	}
	return nil
}

func (d *pcmuDecoder) DecodeFEC([]byte, []int16) error { return ErrNoFEC }
func (d *pcmuDecoder) Close() error                    { return nil }

// pitchPeriod finds the lag (2.5–15 ms) with the highest normalised
// autocorrelation over the end of h, working on every second sample to keep
// it cheap; it falls back to 10 ms.
func pitchPeriod(h []int16) int {
	const minLag, maxLag, win = 120, 720, 480
	if len(h) < maxLag+win {
		return 480
	}
	end := len(h)
	best, bestLag := -1.0, 480
	for lag := minLag; lag <= maxLag; lag += 2 {
		var xy, yy float64
		for i := end - win; i < end; i += 2 {
			x, y := float64(h[i]), float64(h[i-lag])
			xy += x * y
			yy += y * y
		}
		if yy == 0 {
			continue
		}
		if c := xy / math.Sqrt(yy+1); c > best {
			best, bestLag = c, lag
		}
	}
	return bestLag
}
