package call

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/media"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWAVAligner feeds the WAV writer periods stamped the way devices
// deliver them and checks that every sample lands at its time: each
// sample carries the millisecond it passed the device (+1, so silence is
// 0), and in the file sample i of either channel must hold i/48 or be
// silence.
func TestWAVAligner(t *testing.T) {
	const period = media.SampleRate / 100 // 10 ms
	t0 := time.Unix(1000, 0)
	at := func(pos int) time.Time { return t0.Add(time.Duration(pos) * time.Second / media.SampleRate) }
	frame := func(pos int) []int16 {
		p := make([]int16, period)
		for j := range p {
			p[j] = int16(1 + (pos+j)/48)
		}
		return p
	}
	type delivery struct {
		kind recKind
		pos  int       // the first sample's time, in samples after t0
		at   time.Time // when the callback ran
		lost int64
	}
	// steady is a channel delivering every period on time in [from, to).
	steady := func(k recKind, from, to int) []delivery {
		var d []delivery
		for p := from; p < to; p += period {
			d = append(d, delivery{kind: k, pos: p, at: at(p)})
		}
		return d
	}
	const s = media.SampleRate
	for _, tc := range []struct {
		name    string
		left    []delivery
		right   []delivery
		silence [2]int // samples of silence expected per channel (±1 period)
		stop    int    // when the recording stopped (0: after the last period)
	}{
		{
			name:    "the playback starts 200 ms late",
			left:    steady(recLocal, 0, 2*s),
			right:   steady(recRemote, s/5, 2*s),
			silence: [2]int{0, s / 5},
		},
		{
			name:    "the microphone stops for 400 ms (a device switch)",
			left:    append(steady(recLocal, 0, s), steady(recLocal, s+2*s/5, 3*s)...),
			right:   steady(recRemote, 0, 3*s),
			silence: [2]int{2 * s / 5, 0},
		},
		{
			name: "a 300 ms late tick, caught up in a burst",
			left: steady(recLocal, 0, 2*s),
			right: func() []delivery {
				d := steady(recRemote, 0, 2*s)
				for i := range d {
					if p := d[i].pos; p >= s && p < s+3*s/10 {
						d[i].at = at(s + 3*s/10)
					}
				}
				return d
			}(),
		},
		{
			name:    "the playback never runs",
			left:    steady(recLocal, 0, s),
			silence: [2]int{0, s},
		},
		{
			name:    "the microphone stops 300 ms before the end, the recording 100 ms after",
			left:    append(steady(recLocal, 0, s), steady(recLocal, s+3*s/10, s+2*s/5)...),
			right:   steady(recRemote, 0, s+2*s/5),
			silence: [2]int{3*s/10 + s/10, s / 10},
			stop:    s + s/2,
		},
		{
			name: "the queue had no room for 5 periods",
			left: func() []delivery {
				var d []delivery
				for _, x := range steady(recLocal, 0, 2*s) {
					if x.pos >= s && x.pos < s+5*period {
						continue
					}
					if x.pos == s+5*period {
						x.lost = 5 * period
					}
					d = append(d, x)
				}
				return d
			}(),
			right:   steady(recRemote, 0, 2*s),
			silence: [2]int{5 * period, 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			sink, err := media.NewWAVWriter(&out, 2)
			require.NoError(t, err)
			r := &Recording{wav: sink}
			r.t0.Store(t0.UnixNano())
			end := 0
			for _, d := range append(tc.left, tc.right...) {
				end = max(end, d.pos+period)
			}
			if tc.stop != 0 {
				end = tc.stop
			}
			r.stopAt.Store(at(end).UnixNano())
			var w wavAligner
			// The two callbacks interleave by the time they ran.
			l, rr := tc.left, tc.right
			for len(l) > 0 || len(rr) > 0 {
				var d delivery
				if len(rr) == 0 || (len(l) > 0 && !rr[0].at.Before(l[0].at)) {
					d, l = l[0], l[1:]
				} else {
					d, rr = rr[0], rr[1:]
				}
				require.NoError(t, w.place(r, &recItem{kind: d.kind, at: d.at, lost: d.lost, pcm: frame(d.pos)}))
			}
			require.NoError(t, w.finish(r))
			require.NoError(t, sink.Close())

			data := out.Bytes()[44:]
			assert.InDelta(t, end, len(data)/4, period, "the recording's length")
			var silent [2]int
			var misplaced [2]int
			for i := 0; i+4 <= len(data); i += 4 {
				n := i / 4
				for c := range 2 {
					v := int(int16(binary.LittleEndian.Uint16(data[i+2*c:])))
					if v == 0 {
						silent[c]++
						continue
					}
					if d := v - 1 - n/48; d < -1 || d > 1 {
						misplaced[c]++
					}
				}
			}
			assert.Zero(t, misplaced, "samples away from their time (left, right)")
			for c := range 2 {
				assert.InDelta(t, tc.silence[c], silent[c], period, "silence in channel %d", c)
			}
		})
	}
}

// TestOggOut: the Ogg copy keeps the received packets as they came and
// the stream's timing: a gap gets empty frames, a duplicate or a packet
// whose time has been written is left out, a new SSRC carries on without
// a gap, and packets of another codec are refused.
func TestOggOut(t *testing.T) {
	const toc = 31 << 3 // CELT fullband 20 ms, mono, one frame
	pkt := func(ssrc uint32, ts uint32, b byte) *recItem {
		return &recItem{kind: recPacket, ssrc: ssrc, ts: ts, opus: true, payload: []byte{toc, b, b}}
	}
	var out bytes.Buffer
	o, err := newOggOut(&out)
	require.NoError(t, err)
	for _, it := range []*recItem{
		pkt(7, 1000, 1),
		pkt(7, 1960, 2),
		pkt(7, 1960, 2),  // duplicate
		pkt(7, 3880, 4),  // one frame missing before it
		pkt(7, 2920, 3),  // too late: its time has been written
		pkt(9, 50000, 5), // a new stream
		pkt(9, 50960, 6),
		{kind: recPacket, ssrc: 9, ts: 51920, payload: []byte{1, 2}}, // not Opus
	} {
		err := o.write(it)
		if it.opus {
			require.NoError(t, err)
		} else {
			assert.ErrorIs(t, err, ErrNotOpus)
		}
	}
	require.NoError(t, o.close())

	r, head, err := oggreader.NewWith(bytes.NewReader(out.Bytes()))
	require.NoError(t, err)
	assert.EqualValues(t, 1, head.Channels)
	var got [][]byte
	var granule uint64
	for {
		payload, h, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if len(payload) == 0 || bytes.HasPrefix(payload, []byte("OpusTags")) {
			continue
		}
		got = append(got, payload)
		granule = h.GranulePosition
	}
	want := [][]byte{{toc, 1, 1}, {toc, 2, 2}, {toc}, {toc, 4, 4}, {toc, 5, 5}, {toc, 6, 6}}
	assert.Equal(t, want, got)
	assert.EqualValues(t, 6*960, granule, "the stream's length in samples")
}
