package media

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dialtone-dev/dialtone/media/mediatest"
	"github.com/dialtone-dev/dialtone/media/pcm"
)

func TestToneCadenceAndLevel(t *testing.T) {
	tone := NewTone(Busy(StyleITU)) // 425 Hz, 0.5 s on / 0.5 s off
	buf := make([]int16, SampleRate*2)
	_, err := tone.ReadPCM(buf)
	require.NoError(t, err)
	on := buf[SampleRate/10 : SampleRate*4/10]
	off := buf[SampleRate*6/10 : SampleRate*9/10]
	assert.InDelta(t, -16, LevelDBov(on), 0.3)
	assert.Equal(t, SilenceDBov, LevelDBov(off))
	// Frequency: zero crossings over 0.3 s of a 425 Hz sine ≈ 255.
	cross := 0
	for i := 1; i < len(on); i++ {
		if (on[i-1] < 0) != (on[i] < 0) {
			cross++
		}
	}
	assert.InDelta(t, 255, cross, 3)

	us := NewTone(ToneSpec{Frequencies: []float64{480, 620}, Duration: 100 * time.Millisecond})
	n, err := us.ReadPCM(make([]int16, SampleRate))
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, SampleRate/10, n)
	for _, spec := range []ToneSpec{Ringback(StyleITU), Ringback(StyleUS), Busy(StyleUS), ErrorTone(StyleITU), ErrorTone(StyleUS)} {
		assert.NotEmpty(t, spec.Frequencies)
		assert.Len(t, spec.Cadence, 2)
	}
}

func TestMixerSaturatesAndDropsEnded(t *testing.T) {
	loud := pcm.Loop(mediatest.Sine(4800, 500, 0.9))
	tone := NewTone(ToneSpec{Frequencies: []float64{500}, Level: -1, Duration: 50 * time.Millisecond})
	m := NewMixer(loud, tone)
	buf := make([]int16, 4800)
	n, err := m.ReadPCM(buf)
	require.NoError(t, err)
	assert.Equal(t, 4800, n)
	peak := 0
	for _, v := range buf {
		peak = max(peak, int(math.Abs(float64(v))))
	}
	assert.GreaterOrEqual(t, peak, 32767, "sum clips instead of wrapping")
	assert.Equal(t, 1, m.Len(), "ended tone removed")
	m.Remove(loud)
	_, _ = m.ReadPCM(buf)
	assert.Equal(t, SilenceDBov, LevelDBov(buf))
}

func writeTestWAV(t *testing.T, rate, channels int, frames []int16) []byte {
	t.Helper()
	var b bytes.Buffer
	data := len(frames) * 2
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, uint32(36+data+10))
	b.WriteString("WAVE")
	b.WriteString("LIST") // an unknown chunk before fmt must be skipped
	_ = binary.Write(&b, binary.LittleEndian, uint32(2))
	b.WriteString("xx")
	b.WriteString("fmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(channels), uint32(rate),
		uint32(rate * channels * 2), uint16(channels * 2), uint16(16)} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	_ = binary.Write(&b, binary.LittleEndian, uint32(data))
	_ = binary.Write(&b, binary.LittleEndian, frames)
	return b.Bytes()
}

func TestWAVResampleAndDownmix(t *testing.T) {
	// 1 s of a 1 kHz sine at 16 kHz stereo (left = right).
	const rate = 16000
	var frames []int16
	for i := 0; i < rate; i++ {
		v := int16(16000 * math.Sin(2*math.Pi*1000*float64(i)/rate))
		frames = append(frames, v, v)
	}
	w, err := ReadWAV(bytes.NewReader(writeTestWAV(t, rate, 2, frames)))
	require.NoError(t, err)
	assert.Equal(t, rate, w.SourceRate)
	assert.Equal(t, 2, w.SourceChannels)
	assert.InDelta(t, SampleRate, len(w.Samples), 3)
	ref := mediatest.Sine(len(w.Samples), 1000, 16000.0/32767)
	mid := SampleRate / 10
	d, _ := mediatest.Delay(ref[mid:mid+4800], w.Samples[mid:mid+9600])
	assert.Greater(t, mediatest.SNR(ref[mid:mid+4800], w.Samples[mid:mid+9600], d), 40.0)

	_, err = ReadWAV(bytes.NewReader([]byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x03\x00\x01\x00\x80\xbb\x00\x00\x00\x00\x00\x00\x04\x00\x20\x00")))
	assert.ErrorIs(t, err, ErrUnsupportedWAV)
	_, err = ReadWAV(bytes.NewReader([]byte("nope")))
	assert.Error(t, err)
}

func TestWAVSinkRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.wav")
	sink, err := CreateWAV(path)
	require.NoError(t, err)
	sig := mediatest.MultiTone(SampleRate/2, 9)
	_, err = sink.WritePCM(sig[:1000])
	require.NoError(t, err)
	_, err = sink.WritePCM(sig[1000:])
	require.NoError(t, err)
	require.NoError(t, sink.Close())
	_, err = sink.WritePCM(sig)
	assert.ErrorIs(t, err, ErrClosed)

	w, err := OpenWAV(path)
	require.NoError(t, err)
	assert.Equal(t, sig, w.Samples)
	assert.Equal(t, SampleRate, w.SourceRate)
	assert.Equal(t, 1, w.SourceChannels)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, int64(44+2*len(sig)), st.Size())
}

// TestWAVWriterStereo: a stereo WAV written after other bytes of a file
// gets its sizes at its own offset on Close, and the file is left open
// for the caller; written to a stream that cannot seek, it says "length
// unknown" and still reads back whole.
func TestWAVWriterStereo(t *testing.T) {
	left, right := mediatest.Sine(SampleRate/4, 440, 0.3), mediatest.Sine(SampleRate/4, 660, 0.3)
	inter := make([]int16, 0, 2*len(left))
	for i := range left {
		inter = append(inter, left[i], right[i])
	}
	mono := make([]int16, len(left))
	for i := range mono {
		mono[i] = int16((int(left[i]) + int(right[i])) / 2)
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "rec.bin"))
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Write([]byte("prefix"))
	require.NoError(t, err)
	sink, err := NewWAVWriter(f, 2)
	require.NoError(t, err)
	_, err = sink.WritePCM(inter)
	require.NoError(t, err)
	require.NoError(t, sink.Close())
	_, err = f.Write([]byte("!"))
	require.NoError(t, err, "the caller's file stays open")
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	wav := b[6 : len(b)-1]
	assert.EqualValues(t, 36+4*len(left), binary.LittleEndian.Uint32(wav[4:]), "RIFF size")
	assert.EqualValues(t, 4*len(left), binary.LittleEndian.Uint32(wav[40:]), "data size")
	w, err := ReadWAV(bytes.NewReader(wav))
	require.NoError(t, err)
	assert.Equal(t, 2, w.SourceChannels)
	assert.Equal(t, mono, w.Samples)

	var stream bytes.Buffer
	sink, err = NewWAVWriter(&stream, 2)
	require.NoError(t, err)
	_, err = sink.WritePCM(inter)
	require.NoError(t, err)
	require.NoError(t, sink.Close())
	assert.EqualValues(t, uint32(0xffffffff), binary.LittleEndian.Uint32(stream.Bytes()[40:]), "data size unknown")
	w, err = ReadWAV(&stream)
	require.NoError(t, err)
	assert.Equal(t, mono, w.Samples)

	_, err = NewWAVWriter(&stream, 0)
	assert.ErrorIs(t, err, ErrUnsupportedWAV)
}

func TestVADEvents(t *testing.T) {
	var events []VoiceEvent
	w := &pushWriter{}
	s, err := NewSender(w, SenderConfig{Codec: CodecPCMU, OnVoice: func(e VoiceEvent) { events = append(events, e) }})
	require.NoError(t, err)
	defer s.Close()
	silence := make([]int16, SampleRate)
	speech := mediatest.SpeechLike(SampleRate, 1)
	tone := mediatest.Sine(SampleRate, 440, 0.3)
	for _, chunk := range [][]int16{silence, tone, silence, speech, silence} {
		_, err := s.WritePCM(chunk)
		require.NoError(t, err)
	}
	require.GreaterOrEqual(t, len(events), 4)
	assert.True(t, events[0].Talking)
	assert.InDelta(t, 1040*time.Millisecond, events[0].At, float64(30*time.Millisecond))
	assert.False(t, events[1].Talking)
	assert.InDelta(t, 2400*time.Millisecond, events[1].At, float64(30*time.Millisecond), "hangover 400 ms")
	assert.False(t, events[len(events)-1].Talking)

	s.SetMuted(true)
	_, _ = s.WritePCM(tone[:960])
	assert.Equal(t, SilenceDBov, s.Level())
	s.SetMuted(false)
	_, _ = s.WritePCM(tone[:960])
	assert.InDelta(t, -13.5, s.Level(), 0.5)
}

func TestAudioLevelExtension(t *testing.T) {
	w := &pushWriter{keep: true}
	s, err := NewSender(w, SenderConfig{Codec: CodecPCMU, AudioLevelID: 1})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.WritePCM(mediatest.Sine(960, 440, 0.3))
	require.NoError(t, err)
	require.Len(t, w.sent, 1)
	ext := w.sent[0].GetExtension(1)
	require.Len(t, ext, 1)
	assert.Equal(t, byte(13), ext[0]&0x7f) // −13.46 dBov
}

// TestReceiverOnPacket: the packet tap sees the audio packets as they
// arrive (a duplicate too), not the telephone events.
func TestReceiverOnPacket(t *testing.T) {
	var seen []uint16
	r, err := NewReceiver(ReceiverConfig{
		Codec:           CodecPCMU,
		DTMFPayloadType: 101,
		OnPacket: func(p *rtp.Packet, codec string) {
			assert.Equal(t, CodecPCMU, codec)
			seen = append(seen, p.SequenceNumber)
		},
	})
	require.NoError(t, err)
	defer r.Close()
	audio := func(seq uint16) *rtp.Packet {
		return &rtp.Packet{Header: rtp.Header{PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160}, Payload: make([]byte, 160)}
	}
	r.Push(audio(1))
	r.Push(audio(3))
	r.Push(&rtp.Packet{Header: rtp.Header{PayloadType: 101, SequenceNumber: 4, Timestamp: 480}, Payload: []byte{1, 0x80, 0, 160}})
	r.Push(audio(2))
	r.Push(audio(2))
	assert.Equal(t, []uint16{1, 3, 2, 2}, seen)
}
