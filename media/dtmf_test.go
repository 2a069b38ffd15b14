package media

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

type dtmfGot struct {
	digit rune
	dur   time.Duration
}

// dtmfWriter feeds a Receiver, delivering every telephone-event end packet
// twice more (network duplicates on top of the sender's own three
// retransmissions) and optionally dropping packets.
type dtmfWriter struct {
	r       *Receiver
	pt      uint8
	drop    func(p *rtp.Packet) bool
	dropped int
	dtmfSeq []uint16 // sequence numbers of telephone-event packets
}

func (w *dtmfWriter) WriteRTP(p *rtp.Packet) error {
	if p.PayloadType == w.pt {
		w.dtmfSeq = append(w.dtmfSeq, p.SequenceNumber)
	}
	if w.drop != nil && w.drop(p) {
		w.dropped++
		return nil
	}
	w.r.Push(p)
	if d, ok := parseDTMF(p.Payload); ok && p.PayloadType == w.pt && d.end {
		w.r.Push(p)
		w.r.Push(p)
	}
	return nil
}

// runDTMFPush sends digits (with durations) through Sender → Receiver in push
// mode with audio before, between and after them, on a simulated clock.
func runDTMFPush(t *testing.T, codec string, frameMs int, digits string, durs []time.Duration, drop func(*rtp.Packet) bool) ([]dtmfGot, ReceiverStats, SenderStats, *dtmfWriter) {
	t.Helper()
	const pt = 101
	clk := newFakeClock()
	var got []dtmfGot
	r, err := NewReceiver(ReceiverConfig{
		Codec: codec, Now: clk.now, FrameMillis: frameMs, DTMFPayloadType: pt,
		OnDTMF: func(d rune, dur time.Duration) { got = append(got, dtmfGot{d, dur}) },
	})
	require.NoError(t, err)
	defer r.Close()
	w := &dtmfWriter{r: r, pt: pt, drop: drop}
	s, err := NewSender(w, SenderConfig{Codec: codec, FrameMillis: frameMs, DTMFPayloadType: pt})
	require.NoError(t, err)
	defer s.Close()

	in := mediatest.MultiTone(SampleRate, 5)
	chunk := make([]int16, 480)
	k := 0
	tick := func() {
		off := (k % 100) * 480
		k++
		_, err := s.WritePCM(in[off : off+480])
		require.NoError(t, err)
		clk.add(10 * time.Millisecond)
		_, err = r.ReadPCM(chunk)
		require.NoError(t, err)
	}
	for range 30 {
		tick()
	}
	for i, d := range digits {
		require.NoError(t, s.SendDTMF(d, durs[i%len(durs)]))
	}
	require.Equal(t, len(digits), s.DTMFPending())
	for n := 0; s.DTMFPending() > 0; n++ {
		require.Less(t, n, 100000, "DTMF never finished")
		tick()
	}
	for range 30 {
		tick()
	}
	return got, r.Stats(), s.Stats(), w
}

func TestDTMFPush(t *testing.T) {
	const digits = "0123456789*#ABCD"
	durs := []time.Duration{100 * time.Millisecond, 40 * time.Millisecond, 70 * time.Millisecond, 250 * time.Millisecond, 55 * time.Millisecond}
	for _, c := range Codecs() {
		for _, ms := range []int{20, 10} {
			t.Run(fmt.Sprint(c.Name, ms), func(t *testing.T) {
				got, rst, sst, _ := runDTMFPush(t, c.Name, ms, digits, durs, nil)
				require.Len(t, got, len(digits), "one event per digit: %v", got)
				for i, g := range got {
					assert.Equal(t, rune(digits[i]), g.digit)
					assert.Equal(t, durs[i%len(durs)], g.dur, "digit %c", g.digit)
				}
				t.Logf("receiver %+v; sender %+v", rst, sst)
				assert.Equal(t, uint64(len(digits)), rst.DTMFEvents)
				assert.Equal(t, uint64(len(digits)), sst.DTMFEvents)
				assert.Zero(t, rst.Lost, "DTMF sequence numbers count as received")
				assert.Zero(t, rst.Late)
				assert.Zero(t, rst.Concealed, "the audio gaps under DTMF are not loss")
				assert.Equal(t, sst.DTMFPackets, rst.NonAudio)
				assert.Equal(t, sst.Packets, rst.Received)
				assert.Equal(t, sst.Bytes, rst.Bytes)
				assert.Equal(t, uint64(2*3*len(digits)), rst.Duplicate) // the writer's extra copies
			})
		}
	}
}

// A 3 s digit overflows the 16-bit duration at 48 kHz and goes out in
// segments; it must still be one event of the full duration.
func TestDTMFLongEventSegments(t *testing.T) {
	codec := Codecs()[0].Name
	got, rst, _, _ := runDTMFPush(t, codec, 20, "5#", []time.Duration{3 * time.Second, 100 * time.Millisecond}, nil)
	require.Len(t, got, 2, "%v", got)
	assert.Equal(t, dtmfGot{'5', 3 * time.Second}, got[0])
	assert.Equal(t, dtmfGot{'#', 100 * time.Millisecond}, got[1])
	assert.Zero(t, rst.Lost)
}

// All three end packets of a digit lost: the event is still reported once,
// with the last duration heard, when the next event or later audio arrives.
func TestDTMFLostEndPackets(t *testing.T) {
	codec := Codecs()[0].Name
	drop := func(p *rtp.Packet) bool {
		d, ok := parseDTMF(p.Payload)
		return ok && p.PayloadType == 101 && d.end && d.event != 11 // keep '#'s end
	}
	got, rst, _, w := runDTMFPush(t, codec, 20, "1#2", []time.Duration{100 * time.Millisecond}, drop)
	require.Len(t, got, 3, "%v", got)
	for i, d := range "1#2" {
		assert.Equal(t, d, got[i].digit)
		assert.InDelta(t, 80*time.Millisecond, got[i].dur, float64(20*time.Millisecond))
	}
	assert.Equal(t, int64(w.dropped), rst.Lost, "really lost packets are loss")
}

func TestSendDTMFErrors(t *testing.T) {
	s, err := NewSender(&pushWriter{}, SenderConfig{Codec: CodecPCMU})
	require.NoError(t, err)
	assert.ErrorIs(t, s.SendDTMF('1', time.Second), ErrNoDTMF)
	s2, err := NewSender(&pushWriter{}, SenderConfig{Codec: CodecPCMU, DTMFPayloadType: 101})
	require.NoError(t, err)
	assert.ErrorIs(t, s2.SendDTMF('x', time.Second), ErrDTMFDigit)
	assert.NoError(t, s2.SendDTMF('d', time.Second))
	ts, err := NewSender(NewTrack("a", "b"), SenderConfig{})
	require.NoError(t, err)
	assert.ErrorIs(t, ts.SendDTMF('1', time.Second), ErrNotBound)
	for _, x := range []*Sender{s, s2, ts} {
		require.NoError(t, x.Close())
	}
	assert.ErrorIs(t, s2.SendDTMF('1', time.Second), ErrClosed)
}

func TestDTMFPayloadRoundTrip(t *testing.T) {
	for code := range uint8(16) {
		d := dtmfDigit(code)
		c, err := dtmfCode(d)
		require.NoError(t, err)
		assert.Equal(t, code, c)
		p := dtmfPayload{event: code, end: code%2 == 0, volume: 10, duration: 1234}
		q, ok := parseDTMF(p.marshal(nil))
		require.True(t, ok)
		assert.Equal(t, p, q)
	}
	_, ok := parseDTMF([]byte{1, 2, 3})
	assert.False(t, ok)
}

// browserEngine registers codecs the way a browser offers them.
func browserEngine(t *testing.T, browser string) *webrtc.MediaEngine {
	m := &webrtc.MediaEngine{}
	reg := func(mime string, pt webrtc.PayloadType, rate uint32, ch uint16, fmtp string) {
		require.NoError(t, m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: rate, Channels: ch, SDPFmtpLine: fmtp},
			PayloadType:        pt,
		}, webrtc.RTPCodecTypeAudio))
	}
	switch browser {
	case "chrome":
		reg(webrtc.MimeTypeOpus, 111, 48000, 2, "minptime=10;useinbandfec=1")
		reg("audio/red", 63, 48000, 2, "111/111")
		reg(webrtc.MimeTypeG722, 9, 8000, 0, "")
		reg(webrtc.MimeTypePCMU, 0, 8000, 0, "")
		reg(webrtc.MimeTypePCMA, 8, 8000, 0, "")
		reg("audio/CN", 13, 8000, 0, "")
		reg(MimeTypeTelephoneEvent, 110, 48000, 0, "0-15")
		reg(MimeTypeTelephoneEvent, 126, 8000, 0, "0-15")
	case "firefox":
		reg(webrtc.MimeTypeOpus, 109, 48000, 2, "maxplaybackrate=48000;stereo=1;useinbandfec=1")
		reg(webrtc.MimeTypeG722, 9, 8000, 0, "")
		reg(webrtc.MimeTypePCMU, 0, 8000, 0, "")
		reg(webrtc.MimeTypePCMA, 8, 8000, 0, "")
		reg(MimeTypeTelephoneEvent, 101, 8000, 0, "0-15")
	default: // another dialtone
		require.NoError(t, RegisterCodecs(m))
	}
	return m
}

func loopbackAPI(m *webrtc.MediaEngine) *webrtc.API {
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(n string) bool { return n == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
}

// TestDTMFNegotiation checks that pion, with RegisterCodecs, keeps
// telephone-event when answering offers shaped like Chrome's and Firefox's
// (and when offering to them), and that Track.Bind picks the one matching
// the audio clock.
func TestDTMFNegotiation(t *testing.T) {
	if !OpusAvailable {
		t.Skip("needs Opus: this build has no cgo")
	}
	for _, tc := range []struct {
		remote   string
		weOffer  bool
		wantPT   webrtc.PayloadType
		wantRate uint32
	}{
		{"chrome", false, 110, 48000}, {"firefox", false, 101, 8000},
		{"chrome", true, dtmfPT48k, 48000}, {"firefox", true, dtmfPT8k, 8000},
	} {
		t.Run(fmt.Sprint(tc.remote, "/we-offer=", tc.weOffer), func(t *testing.T) {
			us, err := loopbackAPI(browserEngine(t, "dialtone")).NewPeerConnection(webrtc.Configuration{})
			require.NoError(t, err)
			defer func() { assert.NoError(t, us.Close()) }()
			them, err := loopbackAPI(browserEngine(t, tc.remote)).NewPeerConnection(webrtc.Configuration{})
			require.NoError(t, err)
			defer func() { assert.NoError(t, them.Close()) }()
			track := NewTrack("a", "s")
			_, err = us.AddTrack(track)
			require.NoError(t, err)
			_, err = them.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
			require.NoError(t, err)
			offerer, answerer := them, us
			if tc.weOffer {
				offerer, answerer = us, them
			}
			offer, err := offerer.CreateOffer(nil)
			require.NoError(t, err)
			require.NoError(t, offerer.SetLocalDescription(offer))
			require.NoError(t, answerer.SetRemoteDescription(offer))
			answer, err := answerer.CreateAnswer(nil)
			require.NoError(t, err)
			require.NoError(t, answerer.SetLocalDescription(answer))
			require.NoError(t, offerer.SetRemoteDescription(answer))
			assert.Contains(t, strings.ToLower(answer.SDP), "telephone-event/")

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for {
				if neg, ok := track.Negotiated(); ok {
					assert.Equal(t, CodecOpus, neg.Codec.Name)
					assert.Equal(t, tc.wantPT, neg.DTMF.PayloadType)
					assert.Equal(t, tc.wantRate, neg.DTMF.ClockRate)
					return
				}
				select {
				case <-ctx.Done():
					t.Fatal("track never bound")
				case <-time.After(5 * time.Millisecond):
				}
			}
		})
	}
}

// TestDTMFEndToEnd sends "123#" through Sender → Track → pion → pion →
// TrackReceiver while audio flows, and checks the digits arrive once each
// with their durations, no audio packet is lost, and the audio after them
// is intact.
func TestDTMFEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	var mu sync.Mutex
	var got []dtmfGot
	gotAll := make(chan struct{})
	track := NewTrack("audio", "dtmf")
	rcvCh := make(chan *Receiver, 1)
	loopbackPair(t, track, func(tr *webrtc.TrackRemote) {
		r, err := NewTrackReceiver(tr, ReceiverConfig{OnDTMF: func(d rune, dur time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, dtmfGot{d, dur})
			if len(got) == 4 {
				close(gotAll)
			}
		}})
		if assert.NoError(t, err) {
			rcvCh <- r
		}
	})
	snd, err := NewSender(track, SenderConfig{})
	require.NoError(t, err)
	defer snd.Close()

	const total = 200 // 10 ms chunks: 2 s
	signal := mediatest.MultiTone(total*480, 13)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now().Add(20 * time.Millisecond)
	sendDone := make(chan struct{})
	var sendErr error
	go func() {
		defer close(sendDone)
		clock(ctx, start, 10*time.Millisecond, func(k int) bool {
			if k >= total {
				return false
			}
			if k == 50 { // 0.5 s in: the call is up
				for _, d := range "123#" {
					if err := snd.SendDTMF(d, 100*time.Millisecond); err != nil {
						sendErr = err
						return false
					}
				}
			}
			_, err := snd.WritePCM(signal[k*480 : (k+1)*480])
			return err == nil || k < 20
		})
	}()
	var rcv *Receiver
	select {
	case rcv = <-rcvCh:
	case <-ctx.Done():
		t.Fatal("no remote track")
	}
	defer rcv.Close()
	var out []int16
	chunk := make([]int16, 480)
	clock(ctx, time.Now(), 10*time.Millisecond, func(int) bool {
		_, err := rcv.ReadPCM(chunk)
		require.NoError(t, err)
		out = append(out, chunk...)
		return time.Since(start) < (total+10)*10*time.Millisecond
	})
	<-sendDone
	require.NoError(t, sendErr)
	select {
	case <-gotAll:
	case <-ctx.Done():
	}
	neg, _ := track.Negotiated()
	st := rcv.Stats()
	sst := snd.Stats()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("negotiated %s + telephone-event/%d (PT %d); got %v; receiver %+v; sender %+v",
		neg.Codec.Name, neg.DTMF.ClockRate, neg.DTMF.PayloadType, got, st, sst)
	require.Len(t, got, 4)
	for i, d := range "123#" {
		assert.Equal(t, dtmfGot{d, 100 * time.Millisecond}, got[i])
	}
	assert.Zero(t, st.Lost)
	assert.Equal(t, uint64(4), st.DTMFEvents)
	assert.Equal(t, sst.DTMFPackets, st.NonAudio)
	// The last 0.6 s of the signal (well after the digits) came through.
	tail := signal[140*480:]
	_, corr := mediatest.Delay(tail, out)
	assert.Greater(t, corr, 0.5, "audio after the digits")
}
