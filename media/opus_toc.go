package media

// opusDuration parses the TOC byte of an Opus packet (RFC 6716 §3.1) and
// returns its duration in 48 kHz samples, or 0 for a malformed packet. It is
// pure Go so the jitter buffer can time packets without cgo.
func opusDuration(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	toc := p[0]
	cfg := toc >> 3
	var frame int // samples at 48 kHz
	switch {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		frame = []int{480, 960, 1920, 2880}[cfg&3]
	case cfg < 16: // Hybrid: 10, 20 ms
		frame = []int{480, 960}[cfg&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = []int{120, 240, 480, 960}[cfg&3]
	}
	var count int
	switch toc & 3 {
	case 0:
		count = 1
	case 1, 2:
		count = 2
	default:
		if len(p) < 2 {
			return 0
		}
		count = int(p[1] & 0x3f)
	}
	if d := frame * count; d <= 5760 {
		return d
	}
	return 0
}

// OpusDuration returns the duration of an Opus packet in 48 kHz samples,
// read from its TOC byte (RFC 6716 §3.1), or 0 for a malformed packet. It
// needs no decoder (and no cgo).
func OpusDuration(p []byte) int { return opusDuration(p) }
