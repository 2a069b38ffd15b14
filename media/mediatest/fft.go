package mediatest

import (
	"math"
	"math/cmplx"
)

// Convolve returns the linear convolution x * h truncated to len(x), by
// FFT: x played through a room (or any filter) whose impulse response is
// h.
func Convolve(x, h []float64) []float64 {
	a, b := spectra(x, h)
	for i := range a {
		a[i] *= b[i]
	}
	fft(a, true)
	y := make([]float64, len(x))
	for i := range y {
		y[i] = real(a[i])
	}
	return y
}

// crossCorrelate returns c with c[l] = Σ x[i]·y[i+l] for every lag l, by
// FFT; a negative lag l is at c[len(c)+l]. len(c) ≥ len(x)+len(y), so the
// lags do not wrap onto each other.
func crossCorrelate[T int16 | float64](x, y []T) []float64 {
	a, b := spectra(x, y)
	for i := range a {
		a[i] = b[i] * cmplx.Conj(a[i])
	}
	fft(a, true)
	c := make([]float64, len(a))
	for i := range c {
		c[i] = real(a[i])
	}
	return c
}

// spectra returns the FFTs of x and y, both zero-padded to the smallest
// power of two ≥ len(x)+len(y), so that multiplying them makes a linear,
// not circular, convolution or correlation.
func spectra[T int16 | float64](x, y []T) (a, b []complex128) {
	n := 1
	for n < len(x)+len(y) {
		n <<= 1
	}
	a, b = make([]complex128, n), make([]complex128, n)
	for i, v := range x {
		a[i] = complex(float64(v), 0)
	}
	for i, v := range y {
		b[i] = complex(float64(v), 0)
	}
	fft(a, false)
	fft(b, false)
	return a, b
}

// fft is an in-place iterative radix-2 FFT (len(a) a power of two); inverse
// scales by 1/n.
func fft(a []complex128, inverse bool) {
	n := len(a)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			a[i], a[j] = a[j], a[i]
		}
	}
	sign := -1.0
	if inverse {
		sign = 1
	}
	for size := 2; size <= n; size <<= 1 {
		ang := sign * 2 * math.Pi / float64(size)
		wl := complex(math.Cos(ang), math.Sin(ang))
		half := size / 2
		// Twiddles per stage, computed once (accurate and cheap).
		tw := make([]complex128, half)
		w := complex(1, 0)
		for k := range tw {
			if k%64 == 0 {
				w = cmplx.Rect(1, ang*float64(k))
			}
			tw[k] = w
			w *= wl
		}
		for start := 0; start < n; start += size {
			for k := 0; k < half; k++ {
				u := a[start+k]
				v := a[start+k+half] * tw[k]
				a[start+k] = u + v
				a[start+k+half] = u - v
			}
		}
	}
	if inverse {
		inv := complex(1/float64(n), 0)
		for i := range a {
			a[i] *= inv
		}
	}
}
