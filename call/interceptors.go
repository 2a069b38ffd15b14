package call

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// reuseAttributes is an interceptor that spares pion's RTCP receiver-report
// interceptor two allocations per received RTP packet. pion reads each
// packet with nil attributes, and the report interceptor then makes a map
// and parses the packet's header into a new rtp.Header stored in it. With
// many calls in one process that is a large share of all it allocates in
// steady state, and so of its garbage collections, each of which can stall
// every call's audio for a moment (concealment in bursts that start at a
// collection; call/loadtest shows it).
//
// Registered before the report interceptor, it sits inside it on the read
// path: it hands each read the stream's one map, emptied, and once the
// report interceptor has put its parsed header in that map (the only
// *rtp.Header value in it, under pion's unexported key), it parses every
// later packet into that same header under that key, where the report
// interceptor finds it instead of parsing again. If pion stops storing
// the header that way, this degrades to reusing the map.
//
// A stream's reads happen one at a time (pion's peek of the first packet
// finishes before OnTrack starts media.Receiver's read loop, the only
// reader after it), and the report interceptor keeps neither the map nor
// the header past a read. The attributes a read returns are therefore
// valid only until the next read; media.Receiver ignores them.
type reuseAttributes struct{ interceptor.NoOp }

func (*reuseAttributes) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &reuseAttributes{}, nil
}

func (*reuseAttributes) BindRemoteStream(_ *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	attrs := make(interceptor.Attributes, 1)
	var (
		key any
		hdr *rtp.Header
	)
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		if a != nil {
			return reader.Read(b, a)
		}
		if key == nil {
			key, hdr = headerEntry(attrs)
		}
		clear(attrs)
		n, a, err := reader.Read(b, attrs)
		if err != nil || hdr == nil || a == nil {
			return n, a, err
		}
		*hdr = rtp.Header{CSRC: hdr.CSRC[:0], Extensions: hdr.Extensions[:0]}
		if _, perr := hdr.Unmarshal(b[:n]); perr == nil {
			a[key] = hdr
		}
		return n, a, err
	})
}

// headerEntry finds the one *rtp.Header value in a.
func headerEntry(a interceptor.Attributes) (key any, hdr *rtp.Header) {
	for k, v := range a {
		if h, ok := v.(*rtp.Header); ok {
			if hdr != nil {
				return nil, nil
			}
			key, hdr = k, h
		}
	}
	return key, hdr
}
