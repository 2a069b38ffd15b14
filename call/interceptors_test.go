package call

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// headerProbe is an interceptor outside the report interceptor on the read
// path: it records the header the attributes hold after each read, which
// is the one the report interceptor used.
type headerProbe struct {
	interceptor.NoOp
	seen []seenHeader
}

type seenHeader struct {
	seq uint16
	ext bool
	val string // extension 1's payload
}

func (p *headerProbe) NewInterceptor(string) (interceptor.Interceptor, error) { return p, nil }

func (p *headerProbe) BindRemoteStream(_ *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err == nil {
			h, herr := a.GetRTPHeader(b[:n])
			if herr == nil {
				p.seen = append(p.seen, seenHeader{h.SequenceNumber, h.Extension, string(h.GetExtension(1))})
			}
		}
		return n, a, err
	})
}

// TestReuseAttributesKeepsReportsRight reads packets (some with a header
// extension, one malformed) through reuseAttributes, pion's report
// interceptor and a probe, and checks that the header the report
// interceptor works from is each packet's own, and that in steady state a
// read allocates nothing (pion alone allocates a map and a header per read).
func TestReuseAttributesKeepsReportsRight(t *testing.T) {
	probe := &headerProbe{}
	rf, err := report.NewReceiverInterceptor()
	require.NoError(t, err)
	ir := &interceptor.Registry{}
	ir.Add(&reuseAttributes{})
	ir.Add(rf)
	ir.Add(probe)
	chain, err := ir.Build("")
	require.NoError(t, err)
	defer chain.Close()

	var next []byte
	src := interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return copy(b, next), a, nil
	})
	r := chain.BindRemoteStream(&interceptor.StreamInfo{SSRC: 7, ClockRate: 48000}, src)
	buf := make([]byte, 1500)
	packet := func(seq uint16, ext bool) []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 7}, Payload: []byte{0xf8, 1, 2}}
		if ext {
			require.NoError(t, p.SetExtension(1, []byte{byte(seq)}))
		}
		raw, err := p.Marshal()
		require.NoError(t, err)
		return raw
	}

	var want []seenHeader
	for i := range 40 {
		seq := uint16(65530 + i) // wraps
		next = packet(seq, i%3 == 0)
		_, _, err := r.Read(buf, nil)
		require.NoError(t, err)
		want = append(want, seenHeader{seq, i%3 == 0, ""})
		if i%3 == 0 {
			want[i].val = string([]byte{byte(seq)})
		}
		if i == 20 {
			// A packet too short to be RTP: an error, and the next
			// packet's header is still its own.
			next = []byte{0x80, 1}
			_, _, err := r.Read(buf, nil)
			assert.Error(t, err)
		}
	}
	require.Len(t, probe.seen, len(want))
	assert.Equal(t, want, probe.seen)

	probe.seen = make([]seenHeader, 0, 1000)
	next = packet(100, true)
	allocs := testing.AllocsPerRun(200, func() {
		if _, _, err := r.Read(buf, nil); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "allocations per read")
}
