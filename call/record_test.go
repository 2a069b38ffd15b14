package call_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dialtone-dev/dialtone/audio"
	"github.com/dialtone-dev/dialtone/call"
	"github.com/dialtone-dev/dialtone/call/calltest"
	"github.com/dialtone-dev/dialtone/media"
	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
	"github.com/dialtone-dev/dialtone/signaling/server"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stereoWAV is a recording read back: its two channels and the sizes its
// header declares.
type stereoWAV struct {
	left, right        []int16
	riffSize, dataSize uint32
}

// readStereoWAV parses a 48 kHz 16-bit stereo WAV as Record writes it (a
// 44-byte header, then the interleaved samples).
func readStereoWAV(t *testing.T, b []byte) stereoWAV {
	t.Helper()
	require.GreaterOrEqual(t, len(b), 44, "WAV header")
	require.Equal(t, "RIFF", string(b[0:4]))
	require.Equal(t, "WAVEfmt ", string(b[8:16]))
	require.Equal(t, "data", string(b[36:40]))
	le := binary.LittleEndian
	require.EqualValues(t, 1, le.Uint16(b[20:]), "PCM")
	require.EqualValues(t, 2, le.Uint16(b[22:]), "channels")
	require.EqualValues(t, 48000, le.Uint32(b[24:]), "rate")
	require.EqualValues(t, 16, le.Uint16(b[34:]), "bits")
	w := stereoWAV{riffSize: le.Uint32(b[4:]), dataSize: le.Uint32(b[40:])}
	data := b[44:]
	for i := 0; i+4 <= len(data); i += 4 {
		w.left = append(w.left, int16(le.Uint16(data[i:])))
		w.right = append(w.right, int16(le.Uint16(data[i+2:])))
	}
	return w
}

func samplesDur(n int) time.Duration { return time.Duration(n) * time.Second / sec }

// decodeOgg decodes an Ogg Opus recording (one packet per page, as
// pion's writer makes them) and returns its audio and its header's channel
// count.
func decodeOgg(t *testing.T, b []byte) ([]int16, int) {
	t.Helper()
	r, head, err := oggreader.NewWith(bytes.NewReader(b))
	require.NoError(t, err, "Ogg header")
	dec, err := media.NewDecoder(media.CodecOpus)
	require.NoError(t, err)
	defer dec.Close()
	var out []int16
	buf := make([]int16, 5760)
	for {
		payload, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "Ogg page")
		if len(payload) == 0 || bytes.HasPrefix(payload, []byte("OpusTags")) {
			continue
		}
		n, err := dec.Decode(payload, buf)
		if err != nil || n == 0 {
			n = media.OpusDuration(payload)
			require.NoError(t, dec.DecodePLC(buf[:n]), "conceal an empty frame")
		}
		out = append(out, buf[:n]...)
	}
	return out, int(head.Channels)
}

// TestCallRecord: alice and bob each talk in a tone of their own; alice
// records the live call for a while to a WAV file and an Ogg stream. The
// WAV holds alice's tone on the left and bob's on the right, as long as
// the recording ran, with the sizes in its header; the Ogg, decoded,
// holds bob's tone for as long. While it runs a second recording is
// refused; once the call has ended, Record is.
func TestCallRecord(t *testing.T) {
	const aliceTone, bobTone = 520, 760
	opus := true
	if dec, err := media.NewDecoder(media.CodecOpus); err != nil {
		opus = false // built without cgo: the call runs G.711
	} else {
		_ = dec.Close()
	}
	lab := newLab(t, server.Config{})
	alice := newPhone(t, lab, "alice", calltest.PhoneOptions{Mic: toneMic(aliceTone)})
	bob := newPhone(t, lab, "bob", calltest.PhoneOptions{Mic: toneMic(bobTone)})

	c, _, w, _ := connect(t, alice, bob)
	// Bob's tone is playing at alice's before the recording starts.
	start := alice.Speaker.Len()
	require.NoError(t, alice.Speaker.Wait(ctxT(t, 5*time.Second), start+sec/2))

	path := filepath.Join(t.TempDir(), "call.wav")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	var ogg bytes.Buffer
	rec, err := c.Record(ctxT(t, 5*time.Second), call.RecordConfig{WAV: f, Ogg: &ogg})
	require.NoError(t, err)
	began := time.Now()

	_, err = c.Record(ctxT(t, 5*time.Second), call.RecordConfig{WAV: io.Discard})
	assert.ErrorIs(t, err, call.ErrRecording, "a second recording at once")

	played := alice.Speaker.Len()
	require.NoError(t, alice.Speaker.Wait(ctxT(t, 10*time.Second), played+2*sec))
	if err := rec.Stop(ctxT(t, 5*time.Second)); opus {
		require.NoError(t, err)
	} else {
		require.ErrorIs(t, err, call.ErrNotOpus)
	}
	ran := time.Since(began)
	assert.Equal(t, rec.Err(), rec.Stop(ctxT(t, time.Second)), "stopping twice")
	select {
	case <-rec.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	wav := readStereoWAV(t, b)
	got := samplesDur(len(wav.left))
	t.Logf("recorded %v of a %v recording; %d dropped; Ogg %d bytes", got, ran, rec.Dropped(), ogg.Len())
	assert.EqualValues(t, len(b)-44, wav.dataSize, "data size in the header")
	assert.EqualValues(t, len(b)-8, wav.riffSize, "RIFF size in the header")
	assert.InDelta(t, ran.Seconds(), got.Seconds(), 0.1, "the WAV lasts as long as the recording ran")
	assert.Equal(t, got, rec.Duration())

	// The first 100 ms may straddle the start of a period.
	left, right := wav.left[sec/10:], wav.right[sec/10:]
	l := map[string]float64{"alice": toneShare(left, aliceTone), "bob": toneShare(left, bobTone)}
	r := map[string]float64{"alice": toneShare(right, aliceTone), "bob": toneShare(right, bobTone)}
	t.Logf("left: %v, right: %v", l, r)
	assert.Greater(t, l["alice"], 0.8, "left: alice's microphone")
	assert.Less(t, l["bob"], 0.01, "left: not bob")
	assert.Greater(t, r["bob"], 0.5, "right: bob, as alice heard him")
	assert.Less(t, r["alice"], 0.01, "right: not alice")

	if opus {
		pcm, channels := decodeOgg(t, ogg.Bytes())
		t.Logf("Ogg: %v of audio, bob's tone %.2f", samplesDur(len(pcm)), toneShare(pcm, bobTone))
		assert.Equal(t, 1, channels)
		// As long as the WAV, short of what bob's device skipped if the
		// machine stalled it (the stream has no gap then: the sender never
		// saw those periods).
		oggDur := samplesDur(len(pcm))
		assert.LessOrEqual(t, oggDur, got+150*time.Millisecond, "the Ogg lasts no longer than the WAV")
		assert.Greater(t, oggDur, got*6/10, "the Ogg lasts about as long as the WAV")
		assert.Greater(t, toneShare(pcm[min(len(pcm), sec/10):], bobTone), 0.5, "the Ogg holds bob's tone")
	}

	c.Hangup()
	w.waitEnd(t, 5*time.Second)
	_, err = c.Record(ctxT(t, 5*time.Second), call.RecordConfig{WAV: io.Discard})
	assert.ErrorIs(t, err, call.ErrEnded)
}

// TestCallRecordAligned: alice starts a recording while her call still
// rings; it waits for the answer, and ends when bob hangs up. Both talk
// (distinct speech-like signals, never repeating within the test). In the
// recording, a moment on the left (alice's microphone) and the same moment
// on the right (alice's speaker) passed alice's devices at the same time,
// and what the right holds then bob said one mouth-to-ear delay earlier,
// as measured on the devices themselves. The WAV goes to a stream that
// cannot seek, so its header says "length unknown", which media.ReadWAV
// reads to the end.
func TestCallRecordAligned(t *testing.T) {
	lab := newLab(t, server.Config{})
	var aliceMic, aliceSpk, bobMic mediatest.Timeline
	heard := &pcm.Recorder{}
	aliceDev := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true, Source: pcm.Loop(signalFor(1, 20))},
		{ID: "speaker", Direction: audio.Playback, Default: true, Sink: heard},
	}})
	bobDev := audio.NewVirtualBackend(audio.VirtualBackendConfig{Devices: []audio.VirtualDevice{
		{ID: "mic", Direction: audio.Capture, Default: true, Source: pcm.Loop(signalFor(2, 20))},
		{ID: "speaker", Direction: audio.Playback, Default: true},
	}})
	t.Cleanup(func() { _ = aliceDev.Close(); _ = bobDev.Close() })
	cfg := fast()
	cfg.Audio.Backend = audio.Tap(aliceDev, audio.Callbacks{Capture: aliceMic.Add, Playback: aliceSpk.Add})
	alice := newPhone(t, lab, "alice", calltest.PhoneOptions{Config: cfg})
	cfg = fast()
	cfg.Audio.Backend = audio.Tap(bobDev, audio.Callbacks{Capture: bobMic.Add})
	bob := newPhone(t, lab, "bob", calltest.PhoneOptions{Config: cfg})

	c, err := alice.Dial(ctxT(t, 5*time.Second), "bob")
	require.NoError(t, err)
	w := watch(c)
	in := nextIncoming(t, bob, 5*time.Second)
	var out bytes.Buffer
	rec, err := c.Record(ctxT(t, 5*time.Second), call.RecordConfig{WAV: &out})
	require.NoError(t, err)
	recorded := time.Now()

	// Half a second of ringback at alice's before bob answers.
	w.waitState(t, call.Waiting, 5*time.Second)
	n := heard.Len()
	require.NoError(t, heard.Wait(ctxT(t, 5*time.Second), n+sec/2))
	answered := time.Now()
	require.NoError(t, in.Accept(ctxT(t, 5*time.Second)))
	connected := w.waitState(t, call.Connected, 10*time.Second).Time
	n = heard.Len()
	require.NoError(t, heard.Wait(ctxT(t, 10*time.Second), n+3*sec))
	hungUp := time.Now()
	in.Hangup()
	select {
	case <-rec.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the recording did not finish when the call ended")
	}
	require.NoError(t, rec.Err())
	require.NoError(t, rec.Stop(ctxT(t, time.Second)), "Stop after the end")

	wav := readStereoWAV(t, out.Bytes())
	assert.EqualValues(t, 0xffffffff, wav.dataSize, "a stream keeps the size unknown")
	mono, err := media.ReadWAV(bytes.NewReader(out.Bytes()))
	require.NoError(t, err, "media.ReadWAV reads a stream's WAV")
	assert.Len(t, mono.Samples, len(wav.left))
	got := samplesDur(len(wav.left))
	t.Logf("recorded %v; answered %v after Record, hung up %v after the answer", got, answered.Sub(recorded), hungUp.Sub(answered))
	assert.Less(t, got, time.Since(recorded)-400*time.Millisecond, "the ringing is not recorded")
	assert.Greater(t, got, hungUp.Sub(answered)-100*time.Millisecond, "the call is, from its answer")

	// One second from the end of the recording, where both talk, found
	// in each of alice's devices' audio from one moment on, when both
	// were running: the lags are times after that moment.
	a := len(wav.left) - 2*sec
	require.Positive(t, a)
	dL, cL := mediatest.Delay(wav.left[a:a+sec], aliceMic.From(connected))
	dR, cR := mediatest.Delay(wav.right[a:a+sec], aliceSpk.From(connected))
	t.Logf("left found on alice's microphone at %v (corr %.3f), right on her speaker at %v (%.3f)", samplesDur(dL), cL, samplesDur(dR), cR)
	require.Greater(t, cL, 0.99, "the left is alice's microphone")
	require.Greater(t, cR, 0.99, "the right is what alice's speaker played")
	skew := samplesDur(dR - dL)
	assert.Less(t, skew.Abs(), 15*time.Millisecond, "left and right passed the devices together")

	// The right channel on the wall clock the left channel gives it: bob
	// said it one mouth-to-ear delay before, as on the devices.
	var right mediatest.Timeline
	zero := connected.Add(samplesDur(dL - a))
	for i := 0; i+sec/100 <= len(wav.right); i += sec / 100 {
		right.AddAt(wav.right[i:i+sec/100], zero.Add(samplesDur(i)))
	}
	from := mediatest.MouthToEarConfig{From: connected.Add(500 * time.Millisecond)}
	dev := mediatest.MouthToEar(&bobMic, &aliceSpk, from)
	inRec := mediatest.MouthToEar(&bobMic, &right, from)
	t.Logf("bob → alice mouth-to-ear %v on the devices (%d/%d windows), %v in the recording (%d/%d)",
		dev.MouthToEar, dev.Good, dev.All, inRec.MouthToEar, inRec.Good, inRec.All)
	require.True(t, dev.Found(), "bob → alice on the devices")
	require.True(t, inRec.Found(), "bob in the recording")
	assert.InDelta(t, dev.MouthToEar.Seconds(), inRec.MouthToEar.Seconds(), 0.015, "the recording keeps the call's delay")
}

// TestRoomRecord: alice records a room of three, each member talking in
// a tone of their own. The left channel holds her tone, the right the mix
// of bob's and carol's, and not hers; leaving the room ends the
// recording. A room refuses an Ogg recording.
func TestRoomRecord(t *testing.T) {
	lab := newLab(t, server.Config{})
	all := []*member{
		newMember(t, lab, "alice", 440),
		newMember(t, lab, "bob", 620),
		newMember(t, lab, "carol", 820),
	}
	alice, bob, carol := all[0], all[1], all[2]
	for _, m := range all {
		m.join(t, "standup")
	}
	for _, m := range all {
		m.waitConnected(t, without(all, m)...)
	}
	// Both others play at alice's before the recording starts.
	alice.heard(t, 500*time.Millisecond)

	_, err := alice.room.Record(ctxT(t, 5*time.Second), call.RecordConfig{Ogg: io.Discard})
	assert.Error(t, err, "a room records no Ogg")
	var out bytes.Buffer
	rec, err := alice.room.Record(ctxT(t, 5*time.Second), call.RecordConfig{WAV: &out})
	require.NoError(t, err)
	_, err = alice.room.Record(ctxT(t, 5*time.Second), call.RecordConfig{WAV: io.Discard})
	assert.ErrorIs(t, err, call.ErrRecording)
	alice.heard(t, 1500*time.Millisecond)
	require.NoError(t, alice.room.Leave(ctxT(t, 5*time.Second)))
	select {
	case <-rec.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the recording did not finish when alice left")
	}
	require.NoError(t, rec.Err())

	wav := readStereoWAV(t, out.Bytes())
	require.Greater(t, len(wav.left), sec, "at least a second recorded")
	left, right := wav.left[sec/10:], wav.right[sec/10:]
	l, r := tones(left, all...), tones(right, all...)
	t.Logf("recorded %v; left %v, right %v", samplesDur(len(wav.left)), l, r)
	assert.Greater(t, l[alice.User()], 0.8, "left: alice's microphone")
	assert.Less(t, l[bob.User()]+l[carol.User()], 0.01, "left: nobody else")
	assert.Greater(t, r[bob.User()], 0.15, "right: bob in the mix")
	assert.Greater(t, r[carol.User()], 0.15, "right: carol in the mix")
	assert.Less(t, r[alice.User()], 0.01, "right: not alice herself")
}

// gatedWriter takes the WAV header, then blocks every write until open
// is closed: a disk or a socket that stalls.
type gatedWriter struct {
	open   chan struct{}
	writes int
	bytes.Buffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	if g.writes++; g.writes > 1 {
		<-g.open
	}
	return g.Buffer.Write(p)
}

// TestCallRecordStalledWriter: the recording's writer stalls for three
// seconds. The call does not notice (alice's speaker keeps playing), the
// recording drops what it has no room for, and once the writer moves
// again the file still lasts as long as the recording ran, with silence
// where periods were dropped and the tones after it.
func TestCallRecordStalledWriter(t *testing.T) {
	const aliceTone, bobTone = 520, 760
	lab := newLab(t, server.Config{})
	alice := newPhone(t, lab, "alice", calltest.PhoneOptions{Mic: toneMic(aliceTone)})
	bob := newPhone(t, lab, "bob", calltest.PhoneOptions{Mic: toneMic(bobTone)})
	c, _, _, _ := connect(t, alice, bob)

	out := &gatedWriter{open: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(out.open) }) }
	t.Cleanup(release)
	rec, err := c.Record(ctxT(t, 5*time.Second), call.RecordConfig{WAV: out})
	require.NoError(t, err)
	began := time.Now()
	n := alice.Speaker.Len()
	require.NoError(t, alice.Speaker.Wait(ctxT(t, 6*time.Second), n+3*sec), "the call plays on while the writer stalls")
	assert.Positive(t, rec.Dropped(), "periods dropped while the writer stalled")
	release()
	n = alice.Speaker.Len()
	require.NoError(t, alice.Speaker.Wait(ctxT(t, 5*time.Second), n+sec))
	require.NoError(t, rec.Stop(ctxT(t, 5*time.Second)))
	ran := time.Since(began)

	wav := readStereoWAV(t, out.Bytes())
	got := samplesDur(len(wav.left))
	t.Logf("recorded %v of a %v recording, %d periods and packets dropped", got, ran, rec.Dropped())
	assert.InDelta(t, ran.Seconds(), got.Seconds(), 0.1, "the WAV keeps the timeline")
	silent := 0
	for _, v := range wav.left {
		if v == 0 {
			silent++
		}
	}
	assert.Greater(t, samplesDur(silent), 300*time.Millisecond, "the dropped periods are silence")
	last := len(wav.left) - sec/2
	assert.Greater(t, toneShare(wav.left[last:], aliceTone), 0.8, "alice at the end, on the left")
	assert.Greater(t, toneShare(wav.right[last:], bobTone), 0.5, "bob at the end, on the right")
}
