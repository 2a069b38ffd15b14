package media

import "math"

// splice changes the length of the frame x by about want samples (want > 0
// removes, want < 0 inserts) with one crossfaded jump, choosing the jump
// length in a small range where the signal best matches itself (a cheap
// WSOLA step), so periodic sounds keep their phase. It writes the result to
// dst (cap ≥ len(x) + |want| + len(x)/2) and returns it with the signed
// number of samples actually removed (negative: inserted). A jump that does
// not fit leaves x unchanged (0).
func splice(dst, x []int16, want int) ([]int16, int) {
	n := len(x)
	L := n / 8 // crossfade length: 2.5 ms at 20 ms frames
	if want == 0 || L < 8 {
		return append(dst[:0], x...), 0
	}
	k := want
	if k < 0 {
		k = -k
	}
	lo, hi := max(1, k/2), 2*k
	// Removing: read x up to a, then continue from a+d.  Inserting: read x up
	// to a+d, then continue from a (repeat d samples).  Both need a+d+L ≤ n.
	a := L / 2
	hi = min(hi, n-L-a)
	if hi < lo {
		return append(dst[:0], x...), 0
	}
	best, bestD := -1e300, lo
	for d := lo; d <= hi; d++ {
		var xy, yy float64
		for j := 0; j < L; j += 2 {
			u, v := float64(x[a+j]), float64(x[a+d+j])
			xy += u * v
			yy += v * v
		}
		c := xy / math.Sqrt(yy+1e3)
		if c > best {
			best, bestD = c, d
		}
	}
	d := bestD
	out := dst[:0]
	if want > 0 {
		out = append(out, x[:a]...)
		for j := 0; j < L; j++ {
			w := float32(j) / float32(L)
			out = append(out, sat16(float32(x[a+j])*(1-w)+float32(x[a+d+j])*w))
		}
		out = append(out, x[a+d+L:]...)
		return out, d
	}
	out = append(out, x[:a+d]...)
	for j := 0; j < L; j++ {
		w := float32(j) / float32(L)
		out = append(out, sat16(float32(x[a+d+j])*(1-w)+float32(x[a+j])*w))
	}
	out = append(out, x[a+L:]...)
	return out, -d
}
