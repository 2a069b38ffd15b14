package media

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dialtone-dev/dialtone/media/mediatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// loopbackPair connects two PeerConnections on 127.0.0.1 with a plain
// (non-trickle) offer/answer: the offerer sends track, the answerer hands
// the remote track to onTrack.
func loopbackPair(t *testing.T, track webrtc.TrackLocal, onTrack func(*webrtc.TrackRemote)) {
	t.Helper()
	newPC := func() *webrtc.PeerConnection {
		m := &webrtc.MediaEngine{}
		require.NoError(t, RegisterCodecs(m))
		se := webrtc.SettingEngine{}
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIncludeLoopbackCandidate(true)
		se.SetInterfaceFilter(func(n string) bool { return n == "lo" })
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, pc.Close()) })
		return pc
	}
	offerer, answerer := newPC(), newPC()
	_, err := offerer.AddTrack(track)
	require.NoError(t, err)
	answerer.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { onTrack(tr) })

	offer, err := offerer.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(offerer)
	require.NoError(t, offerer.SetLocalDescription(offer))
	<-gathered
	require.NoError(t, answerer.SetRemoteDescription(*offerer.LocalDescription()))
	answer, err := answerer.CreateAnswer(nil)
	require.NoError(t, err)
	gathered = webrtc.GatheringCompletePromise(answerer)
	require.NoError(t, answerer.SetLocalDescription(answer))
	<-gathered
	require.NoError(t, offerer.SetRemoteDescription(*answerer.LocalDescription()))
}

// clock calls fn(k) for k = 0, 1, … at start + k·period, catching up after a
// late wake-up the way a device delivers every buffer, until ctx ends.
func clock(ctx context.Context, start time.Time, period time.Duration, fn func(k int) bool) {
	tk := time.NewTicker(period / 4)
	defer tk.Stop()
	k := 0
	for {
		for due := int(time.Since(start)/period) + 1; k < due; k++ {
			if !fn(k) {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// windowSNR returns the median SNR and delay (ms) over 0.5 s windows.
func windowSNR(ref, out []int16) (snr, delayMs float64) {
	var s, d []float64
	for _, w := range mediatest.Windows(ref, out, SampleRate/2, 250*48) {
		s = append(s, w.SNR)
		d = append(d, float64(w.Delay)/48)
	}
	return mediatest.Median(s), mediatest.Median(d)
}

// pushWriter hands packets straight to a Receiver (no network), optionally
// dropping some.
type pushWriter struct {
	r    *Receiver
	drop func(seq uint16) bool
	sent []rtp.Packet
	keep bool
}

func (w *pushWriter) WriteRTP(p *rtp.Packet) error {
	if w.keep {
		c := *p
		c.Payload = append([]byte(nil), p.Payload...)
		c.Header.Extensions = append([]rtp.Extension(nil), p.Header.Extensions...)
		w.sent = append(w.sent, c)
	}
	if w.drop != nil && w.drop(p.SequenceNumber) {
		return nil
	}
	if w.r != nil {
		w.r.Push(p)
	}
	return nil
}

// fakeClock is a manual clock for simulations.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func TestCodecRoundTrip(t *testing.T) {
	for _, c := range Codecs() {
		for _, ms := range []int{10, 20} {
			t.Run(c.Name+"/"+time.Duration(ms*int(time.Millisecond)).String(), func(t *testing.T) {
				enc, err := NewEncoder(c.Name, EncoderConfig{FrameMillis: ms})
				require.NoError(t, err)
				dec, err := NewDecoder(c.MimeType)
				require.NoError(t, err)
				frame := SampleRate * ms / 1000
				in := mediatest.MultiTone(SampleRate, 7)
				var out []int16
				buf := make([]byte, 1500)
				pcm := make([]int16, 5760)
				for off := 0; off+frame <= len(in); off += frame {
					n, err := enc.Encode(in[off:off+frame], buf)
					require.NoError(t, err)
					assert.Equal(t, frame, dec.Duration(buf[:n]))
					m, err := dec.Decode(buf[:n], pcm)
					require.NoError(t, err)
					require.Equal(t, frame, m)
					out = append(out, pcm[:m]...)
				}
				d, corr := mediatest.Delay(in, out)
				snr := mediatest.SNR(in, out, d)
				t.Logf("%s %d ms: codec delay %d samples, corr %.3f, SNR %.1f dB", c.Name, ms, d, corr, snr)
				assert.Less(t, d, 400)
				assert.Greater(t, snr, 10.0)
				_, err = enc.Encode(in[:frame-1], buf)
				assert.ErrorIs(t, err, ErrFrameSize)
			})
		}
	}
}

func TestSenderReceiverPush(t *testing.T) {
	for _, c := range Codecs() {
		for _, ms := range []int{10, 20} {
			t.Run(fmt.Sprint(c.Name, ms), func(t *testing.T) {
				clk := newFakeClock()
				r, err := NewReceiver(ReceiverConfig{Codec: c.Name, Now: clk.now, FrameMillis: ms})
				require.NoError(t, err)
				defer r.Close()
				w := &pushWriter{r: r}
				// Complexity 9: this checks the pipeline against the codec at
				// its best; at the default (3) a tonal signal at 10 ms frames
				// codes ~2 dB worse (BenchmarkOpusSpeech, package doc).
				s, err := NewSender(w, SenderConfig{Codec: c.Name, FrameMillis: ms, Complexity: 9})
				require.NoError(t, err)
				defer s.Close()
				in := mediatest.MultiTone(2*SampleRate, 3)
				var out []int16
				chunk := make([]int16, 480)
				for off := 0; off+480 <= len(in); off += 480 {
					_, err := s.WritePCM(in[off : off+480])
					require.NoError(t, err)
					_, err = r.ReadPCM(chunk)
					require.NoError(t, err)
					out = append(out, chunk...)
					clk.add(10 * time.Millisecond)
				}
				d, corr := mediatest.Delay(in, out)
				snr := mediatest.SNR(in, out, d)
				st := r.Stats()
				t.Logf("%s: delay %.1f ms corr %.3f SNR %.1f dB stats %+v", c.Name, float64(d)/48, corr, snr, st)
				assert.Greater(t, snr, 10.0)
				assert.Zero(t, st.Lost)
				assert.Zero(t, st.Late)
			})
		}
	}
}
