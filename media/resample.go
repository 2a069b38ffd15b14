package media

import "math"

// The G.711 path resamples 48 kHz ↔ 8 kHz by the integer ratio 6 with a
// windowed-sinc FIR (Kaiser, β=6, 144 taps, −6 dB at 3.6 kHz): flat to about
// 3 kHz, aliases attenuated by roughly 60 dB, about 1.5 ms of group delay each
// way. That is telephone quality, which is what G.711 carries anyway.
const (
	resampleRatio = 6
	resampleTaps  = 144
)

// lowpass designs the shared FIR: cutoff fc as a fraction of the 48 kHz
// sample rate, unity DC gain.
func lowpass(taps int, fc, beta float64) []float32 {
	h := make([]float64, taps)
	var sum float64
	mid := float64(taps-1) / 2
	for i := range h {
		x := float64(i) - mid
		s := 2 * fc
		if x != 0 {
			s = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		r := x / mid
		w := bessel0(beta*math.Sqrt(math.Max(0, 1-r*r))) / bessel0(beta)
		h[i] = s * w
		sum += h[i]
	}
	out := make([]float32, taps)
	for i := range h {
		out[i] = float32(h[i] / sum)
	}
	return out
}

// bessel0 is the zeroth-order modified Bessel function of the first kind.
func bessel0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 40; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

func sat16(v float32) int16 {
	if v >= 32767 {
		return 32767
	}
	if v <= -32768 {
		return -32768
	}
	return int16(math.Round(float64(v)))
}

// decimator converts 48 kHz to 8 kHz, streaming (state across calls).
type decimator struct {
	h   []float32
	buf []float32 // history (taps-1) followed by the current block
}

func newDecimator() *decimator {
	return &decimator{h: lowpass(resampleTaps, 3600.0/SampleRate, 6), buf: make([]float32, resampleTaps-1, resampleTaps-1+960)}
}

// process converts in (a multiple of 6 samples) into out (len(in)/6) and
// returns the number of samples written.
func (d *decimator) process(in []int16, out []int16) int {
	hist := resampleTaps - 1
	d.buf = d.buf[:hist]
	for _, s := range in {
		d.buf = append(d.buf, float32(s))
	}
	n := len(in) / resampleRatio
	for k := 0; k < n; k++ {
		// Output k is aligned with input sample k*6 + 5 (the newest in its block).
		end := hist + k*resampleRatio + resampleRatio // exclusive
		x := d.buf[end-resampleTaps : end]
		var acc float32
		for i, c := range d.h {
			acc += c * x[i]
		}
		out[k] = sat16(acc)
	}
	copy(d.buf, d.buf[len(d.buf)-hist:])
	d.buf = d.buf[:hist]
	return n
}

// interpolator converts 8 kHz to 48 kHz, streaming.
type interpolator struct {
	phases [resampleRatio][]float32 // polyphase branches, each taps/6 long
	buf    []float32                // history (taps/6 - 1) followed by the block
}

func newInterpolator() *interpolator {
	h := lowpass(resampleTaps, 3600.0/SampleRate, 6)
	it := &interpolator{}
	per := resampleTaps / resampleRatio
	for p := 0; p < resampleRatio; p++ {
		br := make([]float32, per)
		for j := 0; j < per; j++ {
			// Reverse so the inner loop runs forward over the history.
			br[per-1-j] = h[p+resampleRatio*j] * resampleRatio
		}
		it.phases[p] = br
	}
	it.buf = make([]float32, per-1, per-1+160)
	return it
}

// process converts in into out (6*len(in) samples) and returns the count.
func (it *interpolator) process(in []int16, out []int16) int {
	per := resampleTaps / resampleRatio
	hist := per - 1
	it.buf = it.buf[:hist]
	for _, s := range in {
		it.buf = append(it.buf, float32(s))
	}
	for m := range in {
		x := it.buf[m : m+per]
		for p := 0; p < resampleRatio; p++ {
			var acc float32
			for j, c := range it.phases[p] {
				acc += c * x[j]
			}
			out[m*resampleRatio+p] = sat16(acc)
		}
	}
	copy(it.buf, it.buf[len(it.buf)-hist:])
	it.buf = it.buf[:hist]
	return len(in) * resampleRatio
}

// resampleTo48k converts a whole buffer from rate to 48 kHz with a
// windowed-sinc interpolator (16 zero crossings, Kaiser β=8). It is meant for
// prompts loaded once, not for the real-time path.
func resampleTo48k(in []int16, rate int) []int16 {
	if rate == SampleRate || len(in) == 0 {
		return append([]int16(nil), in...)
	}
	const zeros = 16
	const beta = 8.0
	step := float64(rate) / SampleRate // input samples per output sample
	fc := math.Min(1, 1/step) * 0.95   // cutoff relative to the input Nyquist
	half := float64(zeros) / fc
	n := int(float64(len(in)) / step)
	out := make([]int16, n)
	ib0 := bessel0(beta)
	for i := range out {
		t := float64(i) * step
		lo := int(math.Ceil(t - half))
		hi := int(math.Floor(t + half))
		var acc float64
		for k := max(lo, 0); k <= hi && k < len(in); k++ {
			x := t - float64(k)
			r := x / half
			w := bessel0(beta*math.Sqrt(math.Max(0, 1-r*r))) / ib0
			s := fc
			if x != 0 {
				s = math.Sin(math.Pi*fc*x) / (math.Pi * x)
			}
			acc += float64(in[k]) * s * w
		}
		out[i] = sat16(float32(acc))
	}
	return out
}
