package mediatest

import (
	"errors"
	"math"
	"math/cmplx"
)

// This file implements ViSQOL v3 in its speech mode (Hines et al., "ViSQOL:
// an objective speech quality model", EURASIP J. Audio, Speech, and Music
// Processing 2015:13; Chinen et al., "ViSQOL v3: an open source production
// ready objective speech and audio metric", QoMEX 2020; reference
// implementation github.com/google/visqol, Apache 2.0), from which the
// constants below are taken. The steps:
//
//  1. Both signals go to 16 kHz; the degraded one is shifted by the global
//     delay found by cross-correlating the two signals' Hilbert envelopes,
//     and scaled to the reference's sound pressure level.
//  2. Each becomes a spectrogram: 21 gammatone (ERB) bands from 50 Hz to
//     8 kHz, the RMS of each band over 80 ms Hann windows every 20 ms, in dB,
//     with an absolute floor and a floor 45 dB under each frame's peak.
//  3. The reference is cut into patches of 20 frames (400 ms); patches
//     without voice activity are left out.
//  4. Each reference patch is matched to the degraded patch that resembles
//     it most, in order (dynamic programming: a later reference patch never
//     matches an earlier degraded one; a patch may match nothing, as when
//     its audio was lost), then each matched pair is realigned in the time
//     domain and measured again, keeping the better of the two.
//  5. Patches are compared with NSIM, the neurogram similarity index (SSIM
//     over a 3×3 Gaussian window of the dB spectrogram); its per-band means,
//     averaged over patches and bands, map to MOS-LQO through ViSQOL's
//     speech polynomial, scaled so that NSIM 1 maps to 5.
//
// Differences from the reference implementation: the envelopes are
// mean-centred before the global cross-correlation (so a long delay is not
// biased towards zero lag), the voice activity of a patch is measured over
// the samples of its own frames, and the patch search reaches ±1 s around
// the globally aligned position rather than ±24 s.

const (
	qRate     = 16000          // ViSQOL's speech mode works at 16 kHz
	qWindow   = 1280           // 80 ms analysis window
	qHop      = 320            // 20 ms: ViSQOL's "overlap" of 0.25 is the hop as a fraction of the window
	qBands    = 21             // gammatone bands in speech mode
	qMinFreq  = 50.0           // Hz, lowest band centre
	qMaxFreq  = 8000.0         // Hz, speech mode's upper limit
	qPatch    = 20             // frames per patch (400 ms)
	qSearch   = 50             // frames a patch match may move from the aligned position (±1 s)
	qFloorAbs = -45.0          // dB, absolute spectrogram floor
	qFloorRel = 45.0           // dB below each frame's peak (of either signal)
	qVAD      = 5000.0 / 32768 // RMS of a frame, relative to the reference's peak, that counts as voice
)

// ErrTooShort is returned by [Quality] when the reference has no 400 ms
// patch with voice activity, or the degraded signal is shorter than one
// analysis window.
var ErrTooShort = errors.New("mediatest: too little speech to measure quality")

// QualityResult is the outcome of [Quality].
type QualityResult struct {
	// MOS is ViSQOL's MOS-LQO, 1 (bad) to 5 (identical).
	MOS float64
	// NSIM is the mean neurogram similarity over bands and patches
	// (ViSQOL's vnsim): 1 for identical signals, lower as the degraded
	// spectrogram departs from the reference; a patch that matched
	// nothing counts 0.
	NSIM float64
	// Bands is the NSIM of each gammatone band (ViSQOL's fvnsim), lowest
	// band first; BandFreqs holds their centre frequencies in Hz.
	Bands, BandFreqs []float64
	// Delay is the global delay of the degraded signal in 48 kHz samples
	// (positive when it comes later than the reference).
	Delay int
	// Patches are the reference patches that were scored, in order.
	Patches []PatchQuality
}

// PatchQuality is the match of one 400 ms reference patch.
type PatchQuality struct {
	// Ref and Deg are where the patch starts in the reference and where
	// its match starts in the degraded signal (after the per-patch
	// realignment, to 16 kHz precision), in 48 kHz samples of the signals
	// as given. Deg is −1 when the patch matched nothing.
	Ref, Deg int
	// NSIM is the patch's similarity (mean over bands).
	NSIM float64
}

// Quality scores how deg sounds compared with ref, both 48 kHz mono speech,
// by ViSQOL v3's speech mode (see the comment at the top of quality.go). deg
// may be delayed or advanced, scaled, and locally stretched or cut against
// ref; what is measured is how its spectro-temporal pattern differs once
// aligned. It costs about a tenth of a second of one core per second of
// speech.
func Quality(ref, deg []int16) (QualityResult, error) {
	r := downsample48to16(ref)
	d := downsample48to16(deg)
	if len(r) <= qWindow || len(d) <= qWindow {
		return QualityResult{}, ErrTooShort
	}
	lag := envelopeLag(r, d, max(len(r), len(d))/2)
	d = shift(d, lag)
	scaleToLevel(r, d)

	fb := newGammatone(qRate, qBands, qMinFreq, qMaxFreq)
	rs, ds := fb.spectrogram(r), fb.spectrogram(d)
	prepareSpectrograms(rs, ds)

	starts := voicedPatches(r, len(rs[0]))
	if len(starts) == 0 {
		return QualityResult{}, ErrTooShort
	}
	matches := matchPatches(rs, ds, starts)

	res := QualityResult{Delay: 3 * lag, Bands: make([]float64, qBands), BandFreqs: fb.centres()}
	const patchSamples = qPatch * qHop
	for i, m := range matches {
		refAt := starts[i] * qHop
		pq := PatchQuality{Ref: 3 * refAt, Deg: -1}
		bands := m.bands
		if m.deg >= 0 {
			degAt := m.deg * qHop
			pq.Deg = 3 * (degAt + lag)
			if fine, lag, ok := realign(fb, r[refAt:min(len(r), refAt+patchSamples)], slicePad(d, degAt, patchSamples)); ok && fine.sim >= m.sim {
				m.sim, bands = fine.sim, fine.bands
				pq.Deg += 3 * lag
			}
		}
		pq.NSIM = m.sim
		for b := range res.Bands {
			res.Bands[b] += bands[b] / float64(len(matches))
		}
		res.Patches = append(res.Patches, pq)
	}
	for _, v := range res.Bands {
		res.NSIM += v / qBands
	}
	res.MOS = nsimToMOS(res.NSIM)
	return res, nil
}

// nsimToMOS is ViSQOL v3's speech mapping: a cubic fitted to the TCD-VoIP
// data set, scaled so that NSIM 1 gives 5, clamped to 1–5, and 1 for
// signals with almost nothing in common.
func nsimToMOS(nsim float64) float64 {
	if nsim < 0.15 {
		return 1
	}
	mos := ((41.644078*nsim-77.034652)*nsim+47.334363)*nsim - 7.487007
	return max(1, min(5, mos*1.121886))
}

// downsample48to16 low-passes at 7.5 kHz (Kaiser-windowed sinc, 121 taps)
// and keeps every third sample, as float64 in −1…1.
func downsample48to16(in []int16) []float64 {
	const taps, half = 121, 60
	const fc = 7500.0 / 48000
	h := make([]float64, taps)
	ib := bessel0(8)
	for k := range h {
		x := float64(k - half)
		s := 2 * fc
		if x != 0 {
			s = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		r := x / half
		h[k] = s * bessel0(8*math.Sqrt(max(0, 1-r*r))) / ib
	}
	out := make([]float64, len(in)/3)
	for i := range out {
		c := 3 * i
		var acc float64
		for k := max(0, half-c); k < taps && c-half+k < len(in); k++ {
			acc += h[k] * float64(in[c-half+k])
		}
		out[i] = acc / 32768
	}
	return out
}

func bessel0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / 2) / float64(k)
		sum += term * term
		if term*term < 1e-12*sum {
			break
		}
	}
	return sum
}

// envelopeLag returns the lag d, |d| ≤ maxLag, at which deg[i+d] best
// matches ref[i], by cross-correlating the mean-centred Hilbert envelopes.
func envelopeLag(ref, deg []float64, maxLag int) int {
	er, ed := centred(envelope(ref)), centred(envelope(deg))
	c := crossCorrelate(er, ed)
	n := len(c)
	best, lag := math.Inf(-1), 0
	for d := -min(maxLag, len(er)-1); d <= min(maxLag, len(ed)-1); d++ {
		if v := c[(d+n)%n]; v > best {
			best, lag = v, d
		}
	}
	return lag
}

// envelope returns the magnitude of the analytic signal of x (zero-padded
// to a power of two for the FFT).
func envelope(x []float64) []float64 {
	n := 1
	for n < len(x) {
		n <<= 1
	}
	a := make([]complex128, n)
	for i, v := range x {
		a[i] = complex(v, 0)
	}
	fft(a, false)
	for i := 1; i < n/2; i++ {
		a[i] *= 2
	}
	for i := n/2 + 1; i < n; i++ {
		a[i] = 0
	}
	fft(a, true)
	out := make([]float64, len(x))
	for i := range out {
		out[i] = cmplx.Abs(a[i])
	}
	return out
}

func centred(x []float64) []float64 {
	var mean float64
	for _, v := range x {
		mean += v / float64(len(x))
	}
	for i := range x {
		x[i] -= mean
	}
	return x
}

// shift returns x advanced by lag samples (lag > 0 drops its first lag
// samples; lag < 0 puts −lag zeros in front).
func shift(x []float64, lag int) []float64 {
	if lag >= 0 {
		return x[min(lag, len(x)):]
	}
	return append(make([]float64, -lag), x...)
}

// slicePad returns n samples of x from start, zero-padded past its end.
func slicePad(x []float64, start, n int) []float64 {
	out := make([]float64, n)
	if start < len(x) {
		copy(out, x[start:])
	}
	return out
}

// scaleToLevel scales deg in place to the RMS level of ref (unless deg is
// silent).
func scaleToLevel(ref, deg []float64) {
	rr, dd := meanSquare(ref), meanSquare(deg)
	if dd == 0 {
		return
	}
	g := math.Sqrt(rr / dd)
	for i := range deg {
		deg[i] *= g
	}
}

func meanSquare(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return s / float64(max(1, len(x)))
}

// gammatone is Slaney's ERB filter bank (Apple TR #35): per band, four
// cascaded biquads whose product is a fourth-order gammatone filter.
type gammatone struct {
	cf   []float64       // centre frequencies, highest first (as designed)
	num  [][4][3]float64 // per band, per stage: b0, b1, b2
	den  [][2]float64    // per band: a1, a2 (shared by the four stages)
	hann []float64
}

func newGammatone(rate float64, bands int, lo, hi float64) *gammatone {
	const earQ, minBW = 9.26449, 24.7 // Glasberg and Moore
	hi = min(hi, rate/2)
	g := &gammatone{}
	e := (math.Log(lo+earQ*minBW) - math.Log(hi+earQ*minBW)) / float64(bands)
	T := 1 / rate
	s1, s2 := math.Sqrt(3-math.Pow(2, 1.5)), math.Sqrt(3+math.Pow(2, 1.5))
	for i := 1; i <= bands; i++ {
		cf := -earQ*minBW + math.Exp(float64(i)*e)*(hi+earQ*minBW)
		B := 1.019 * 2 * math.Pi * (cf/earQ + minBW)
		w := 2 * math.Pi * cf * T
		ebt := math.Exp(B * T)
		cosw, sinw := math.Cos(w), math.Sin(w)
		a11 := -(2*T*cosw/ebt + 2*s2*T*sinw/ebt) / 2
		a12 := -(2*T*cosw/ebt - 2*s2*T*sinw/ebt) / 2
		a13 := -(2*T*cosw/ebt + 2*s1*T*sinw/ebt) / 2
		a14 := -(2*T*cosw/ebt - 2*s1*T*sinw/ebt) / 2
		xExp := cmplx.Exp(complex(0, 2*w))
		x01 := -2 * xExp * complex(T, 0)
		x02 := 2 * cmplx.Exp(complex(-B*T, w)) * complex(T, 0)
		x := func(s float64) complex128 { return x01 + x02*complex(cosw+s*sinw, 0) }
		x5 := complex(-2/math.Exp(2*B*T), 0) - 2*xExp + 2*(1+xExp)/complex(ebt, 0)
		gain := cmplx.Abs(x(-s1) * x(s1) * x(-s2) * x(s2) / (x5 * x5 * x5 * x5))
		g.cf = append(g.cf, cf)
		g.num = append(g.num, [4][3]float64{{T / gain, a11 / gain, 0}, {T, a12, 0}, {T, a13, 0}, {T, a14, 0}})
		g.den = append(g.den, [2]float64{-2 * cosw / ebt, math.Exp(-2 * B * T)})
	}
	g.hann = make([]float64, qWindow)
	for i := range g.hann {
		g.hann[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(qWindow-1))
	}
	return g
}

// centres returns the band centre frequencies, lowest first.
func (g *gammatone) centres() []float64 {
	out := make([]float64, len(g.cf))
	for i, f := range g.cf {
		out[len(out)-1-i] = f
	}
	return out
}

// spectrogram returns [band][frame] RMS amplitudes, lowest band first: each
// 80 ms Hann-windowed frame is filtered from rest, as ViSQOL does.
func (g *gammatone) spectrogram(x []float64) [][]float64 {
	frames := 1 + (len(x)-qWindow)/qHop
	if len(x) < qWindow {
		frames = 0
	}
	out := make([][]float64, len(g.cf))
	for b := range out {
		out[b] = make([]float64, frames)
	}
	buf := make([]float64, qWindow)
	for f := 0; f < frames; f++ {
		seg := x[f*qHop : f*qHop+qWindow]
		for i, v := range seg {
			buf[i] = v * g.hann[i]
		}
		for b := range g.cf {
			out[len(g.cf)-1-b][f] = g.bandRMS(b, buf)
		}
	}
	return out
}

func (g *gammatone) bandRMS(b int, x []float64) float64 {
	n, a1, a2 := g.num[b], g.den[b][0], g.den[b][1]
	// Transposed direct form II, the four stages unrolled so that their
	// state stays in registers: this loop is most of Quality's cost.
	var z10, z11, z20, z21, z30, z31, z40, z41, sum float64
	for _, v := range x {
		y := n[0][0]*v + z10
		z10 = n[0][1]*v + z11 - a1*y
		z11 = n[0][2]*v - a2*y
		v = y
		y = n[1][0]*v + z20
		z20 = n[1][1]*v + z21 - a1*y
		z21 = n[1][2]*v - a2*y
		v = y
		y = n[2][0]*v + z30
		z30 = n[2][1]*v + z31 - a1*y
		z31 = n[2][2]*v - a2*y
		v = y
		y = n[3][0]*v + z40
		z40 = n[3][1]*v + z41 - a1*y
		z41 = n[3][2]*v - a2*y
		sum += y * y
	}
	return math.Sqrt(sum / float64(len(x)))
}

// prepareSpectrograms converts both to dB, applies the absolute floor and
// the per-frame floor under the louder of the two, and shifts both so that
// the lowest value is 0.
func prepareSpectrograms(ref, deg [][]float64) {
	for _, s := range [][][]float64{ref, deg} {
		for _, band := range s {
			for i, v := range band {
				band[i] = max(qFloorAbs, 10*math.Log10(max(v, 0x1p-52)))
			}
		}
	}
	for f := 0; f < min(len(ref[0]), len(deg[0])); f++ {
		peak := math.Inf(-1)
		for b := range ref {
			peak = max(peak, ref[b][f], deg[b][f])
		}
		for b := range ref {
			ref[b][f] = max(ref[b][f], peak-qFloorRel)
			deg[b][f] = max(deg[b][f], peak-qFloorRel)
		}
	}
	lowest := math.Inf(1)
	for _, s := range [][][]float64{ref, deg} {
		for _, band := range s {
			for _, v := range band {
				lowest = min(lowest, v)
			}
		}
	}
	for _, s := range [][][]float64{ref, deg} {
		for _, band := range s {
			for i := range band {
				band[i] -= lowest
			}
		}
	}
}

// voicedPatches returns the first frame of each reference patch that holds
// voice activity: a frame whose samples' RMS reaches qVAD of the peak.
// Patches start at frame qPatch/2−1, as in ViSQOL.
func voicedPatches(x []float64, frames int) []int {
	var peak float64
	for _, v := range x {
		peak = max(peak, math.Abs(v))
	}
	if peak == 0 {
		return nil
	}
	var starts []int
	for p := qPatch/2 - 1; p+qPatch <= frames; p += qPatch {
		for f := p; f < p+qPatch; f++ {
			if math.Sqrt(meanSquare(x[f*qHop:f*qHop+qWindow])) >= qVAD*peak {
				starts = append(starts, p)
				break
			}
		}
	}
	return starts
}

// patchMatch is a reference patch's best degraded patch (deg −1: none).
type patchMatch struct {
	deg   int
	sim   float64
	bands []float64
}

// matchPatches finds, for each reference patch (first frames starts), the
// degraded patch start that maximises the summed similarity of all patches
// with matches in increasing order, each within qSearch frames of its
// reference position; a patch may also match nothing, keeping the sum of
// the patches before it (ViSQOL's dynamic time warping over patches).
func matchPatches(ref, deg [][]float64, starts []int) []patchMatch {
	nDeg := len(deg[0])
	n := len(starts)
	lo := func(j int) int { return max(0, starts[j]-qSearch) }
	hi := func(j int) int { return min(nDeg-1, starts[j]+qSearch) }
	dp := make([][]float64, n)
	back := make([][]int, n)
	for j := range starts {
		dp[j] = make([]float64, nDeg)
		back[j] = make([]int, nDeg)
		for s := range dp[j] {
			dp[j][s] = math.Inf(-1)
		}
		rp := patchOf(ref, starts[j])
		// prev[s] is the best dp[j-1][s'] over s' < s, and its s'.
		bestPrev, bestAt := math.Inf(-1), -1
		prevS := 0
		if j > 0 {
			prevS = lo(j - 1)
		}
		for s := lo(j); s <= hi(j); s++ {
			if j > 0 {
				for ; prevS < s && prevS <= hi(j-1); prevS++ {
					if dp[j-1][prevS] > bestPrev {
						bestPrev, bestAt = dp[j-1][prevS], prevS
					}
				}
			}
			sim, _ := nsim(rp, patchOf(deg, s))
			v, from := sim, -1
			if j > 0 {
				v += bestPrev
				from = bestAt
				if dp[j-1][s] > v { // patch j matched nothing here
					v, from = dp[j-1][s], s
				}
			}
			if math.IsInf(v, -1) {
				continue
			}
			dp[j][s], back[j][s] = v, from
		}
	}
	last := -1
	for s := lo(n - 1); s <= hi(n-1); s++ {
		if s+qPatch > nDeg && last >= 0 {
			break // a match running past the end only if nothing else fits
		}
		if last < 0 || dp[n-1][s] > dp[n-1][last] {
			last = s
		}
	}
	if last >= 0 && math.IsInf(dp[n-1][last], -1) {
		last = -1
	}
	out := make([]patchMatch, n)
	s := last
	for j := n - 1; j >= 0; j-- {
		if s < 0 {
			out[j] = patchMatch{deg: -1, bands: make([]float64, qBands)}
			continue
		}
		if back[j][s] == s {
			out[j] = patchMatch{deg: -1, bands: make([]float64, qBands)}
			continue
		}
		sim, bands := nsim(patchOf(ref, starts[j]), patchOf(deg, s))
		out[j] = patchMatch{deg: s, sim: sim, bands: bands}
		s = back[j][s]
	}
	return out
}

// patchOf returns the qPatch frames of s from frame start, zero (the floor)
// past its end.
func patchOf(s [][]float64, start int) [][]float64 {
	p := make([][]float64, len(s))
	for b, band := range s {
		p[b] = make([]float64, qPatch)
		if start < len(band) {
			copy(p[b], band[start:])
		}
	}
	return p
}

// realign aligns a matched pair of patch signals by their envelopes (a lag
// of up to half the patch, returned), truncates them to the same length,
// and measures them again from fresh spectrograms.
func realign(fb *gammatone, ref, deg []float64) (patchMatch, int, bool) {
	lag := envelopeLag(ref, deg, len(ref)/2)
	if lag > 0 {
		deg = deg[lag:]
	} else if lag < 0 {
		ref = ref[-lag:]
	}
	n := min(len(ref), len(deg))
	if n <= qWindow {
		return patchMatch{}, 0, false
	}
	rs, ds := fb.spectrogram(ref[:n]), fb.spectrogram(deg[:n])
	prepareSpectrograms(rs, ds)
	sim, bands := nsim(rs, ds)
	return patchMatch{sim: sim, bands: bands}, lag, true
}

// nsim returns the neurogram similarity of two equal-sized [band][frame]
// patches (mean over bands) and each band's mean over frames. The window
// statistics extend the patch by repeating its edge rows and columns.
func nsim(r, d [][]float64) (float64, []float64) {
	const L = 1.0 // ViSQOL's intensity range
	const c1, c3 = (0.01 * L) * (0.01 * L), (0.03 * L) * (0.03 * L) / 2
	window := [3][3]float64{ // 3×3 Gaussian, σ = 0.5
		{0.0113033910173052, 0.0838251475442633, 0.0113033910173052},
		{0.0838251475442633, 0.619485845753726, 0.0838251475442633},
		{0.0113033910173052, 0.0838251475442633, 0.0113033910173052},
	}
	nb, nf := len(r), len(r[0])
	at := func(m [][]float64, b, f int) float64 {
		return m[max(0, min(nb-1, b))][max(0, min(nf-1, f))]
	}
	bands := make([]float64, nb)
	var total float64
	for b := 0; b < nb; b++ {
		var sum float64
		for f := 0; f < nf; f++ {
			var mr, md, rr, dd, rd float64
			for i := -1; i <= 1; i++ {
				for k := -1; k <= 1; k++ {
					w := window[i+1][k+1]
					x, y := at(r, b+i, f+k), at(d, b+i, f+k)
					mr += w * x
					md += w * y
					rr += w * x * x
					dd += w * y * y
					rd += w * x * y
				}
			}
			sr, sd, srd := rr-mr*mr, dd-md*md, rd-mr*md
			intensity := (2*mr*md + c1) / (mr*mr + md*md + c1)
			den := c3
			if p := sr * sd; p >= 0 {
				den += math.Sqrt(p)
			}
			sum += intensity * (srd + c3) / den
		}
		bands[b] = sum / float64(nf)
		total += bands[b]
	}
	return total / float64(nb), bands
}
