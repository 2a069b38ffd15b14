package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// WAV is a decoded 16-bit PCM WAV file: its audio as 48 kHz mono samples
// (other rates are resampled, stereo and multichannel are averaged), and the
// format it was stored in. The whole file is decoded at once: it is meant
// for prompts. Play it with pcm.NewPlayer(w.Samples) or pcm.Loop(w.Samples).
type WAV struct {
	// Samples is the audio, 48 kHz mono.
	Samples []int16
	// SourceRate and SourceChannels describe the file as read.
	SourceRate, SourceChannels int
}

// ReadWAV decodes a WAV stream.
func ReadWAV(r io.Reader) (*WAV, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("media: wav header: %w", err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not RIFF/WAVE", ErrUnsupportedWAV)
	}
	var rate, channels, bits int
	haveFmt := false
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, fmt.Errorf("%w: no data chunk", ErrUnsupportedWAV)
		}
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		id := string(ch[:4])
		switch id {
		case "fmt ":
			if size < 16 || size > 1024 {
				return nil, fmt.Errorf("%w: fmt chunk size %d", ErrUnsupportedWAV, size)
			}
			b := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, fmt.Errorf("media: wav fmt: %w", err)
			}
			format := binary.LittleEndian.Uint16(b[0:])
			channels = int(binary.LittleEndian.Uint16(b[2:]))
			rate = int(binary.LittleEndian.Uint32(b[4:]))
			bits = int(binary.LittleEndian.Uint16(b[14:]))
			if format == 0xfffe && size >= 26 { // WAVE_FORMAT_EXTENSIBLE: subformat GUID starts at 24
				format = binary.LittleEndian.Uint16(b[24:])
			}
			if format != 1 || bits != 16 || channels < 1 || channels > 16 || rate < 1000 || rate > 384000 {
				return nil, fmt.Errorf("%w: format %d, %d bits, %d ch, %d Hz", ErrUnsupportedWAV, format, bits, channels, rate)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, fmt.Errorf("%w: data before fmt", ErrUnsupportedWAV)
			}
			// Streams written without a final size carry 0 or 0xffffffff.
			var data []byte
			var err error
			if size == 0 || size == 0xffffffff {
				data, err = io.ReadAll(r)
			} else {
				data = make([]byte, size)
				var n int
				n, err = io.ReadFull(r, data)
				data = data[:n]
				if errors.Is(err, io.ErrUnexpectedEOF) {
					err = nil // truncated file: play what is there
				}
			}
			if err != nil {
				return nil, fmt.Errorf("media: wav data: %w", err)
			}
			frames := len(data) / (2 * channels)
			mono := make([]int16, frames)
			for i := range mono {
				var sum int
				for c := 0; c < channels; c++ {
					sum += int(int16(binary.LittleEndian.Uint16(data[(i*channels+c)*2:])))
				}
				mono[i] = int16(sum / channels)
			}
			return &WAV{Samples: resampleTo48k(mono, rate), SourceRate: rate, SourceChannels: channels}, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, fmt.Errorf("media: wav chunk %q: %w", id, err)
			}
		}
	}
}

// OpenWAV decodes a WAV file.
func OpenWAV(path string) (*WAV, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadWAV(f)
}

// WAVSink writes 48 kHz 16-bit PCM to a WAV file or stream; Close fixes
// the header sizes where the output can seek. It is safe for concurrent
// use.
type WAVSink struct {
	mu       sync.Mutex
	w        io.Writer
	seeker   io.Seeker // nil: the sizes stay "unknown"
	start    int64     // offset of the header in w
	channels int
	closer   io.Closer
	n        int64
	buf      []byte
	closed   bool
}

// NewWAVSink writes a mono header to w and returns a sink. If w is also an
// io.Closer, Close closes it.
func NewWAVSink(w io.WriteSeeker) (*WAVSink, error) {
	s := &WAVSink{w: w, seeker: w, channels: 1}
	s.closer, _ = w.(io.Closer)
	if _, err := w.Write(wavHeader(0, 1)); err != nil {
		return nil, fmt.Errorf("media: wav header: %w", err)
	}
	return s, nil
}

// unknownSize is the data size a WAV header carries when the writer could
// not go back to fill it in: "to the end of the stream", as ReadWAV, ffmpeg
// and sox read it.
const unknownSize = 0xffffffff

// NewWAVWriter writes a header for channels interleaved channels (1 to 16)
// to w and returns a sink taking interleaved samples (left, right, left…
// for stereo). When w can seek (a file: an io.Seeker whose Seek works),
// Close puts the final sizes in the header, wherever in w it began; on a
// stream that cannot (a pipe, a socket, a bytes.Buffer) the header keeps
// the sizes unknown (0xFFFFFFFF), which players read to the end of the
// stream. Close does not close w.
func NewWAVWriter(w io.Writer, channels int) (*WAVSink, error) {
	if channels < 1 || channels > 16 {
		return nil, fmt.Errorf("%w: %d channels", ErrUnsupportedWAV, channels)
	}
	s := &WAVSink{w: w, channels: channels}
	size := uint32(unknownSize)
	if sk, ok := w.(io.Seeker); ok {
		if at, err := sk.Seek(0, io.SeekCurrent); err == nil {
			s.seeker, s.start, size = sk, at, 0
		}
	}
	if _, err := w.Write(wavHeader(size, channels)); err != nil {
		return nil, fmt.Errorf("media: wav header: %w", err)
	}
	return s, nil
}

// CreateWAV creates (truncates) a file and returns a mono sink writing to
// it.
func CreateWAV(path string) (*WAVSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	s, err := NewWAVSink(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func wavHeader(dataBytes uint32, channels int) []byte {
	h := make([]byte, 44)
	riff := dataBytes
	if dataBytes != unknownSize {
		riff = 36 + dataBytes
	}
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], riff)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], SampleRate)
	binary.LittleEndian.PutUint32(h[28:], uint32(SampleRate*2*channels))
	binary.LittleEndian.PutUint16(h[32:], uint16(2*channels))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], dataBytes)
	return h
}

// WritePCM appends p (interleaved when the sink has several channels).
func (s *WAVSink) WritePCM(p []int16) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	if cap(s.buf) < 2*len(p) {
		s.buf = make([]byte, 2*len(p))
	}
	b := s.buf[:2*len(p)]
	for i, v := range p {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	if _, err := s.w.Write(b); err != nil {
		return 0, fmt.Errorf("media: wav write: %w", err)
	}
	s.n += int64(len(b))
	return len(p), nil
}

// Close writes the final sizes into the header (when the output can
// seek) and closes the file NewWAVSink or CreateWAV was given.
func (s *WAVSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.seeker != nil {
		// The largest size a header can hold that is a whole number of
		// sample frames.
		limit := int64(unknownSize-36) / int64(2*s.channels) * int64(2*s.channels)
		if _, err = s.seeker.Seek(s.start, io.SeekStart); err == nil {
			_, err = s.w.Write(wavHeader(uint32(min(s.n, limit)), s.channels))
		}
		if err == nil {
			_, err = s.seeker.Seek(0, io.SeekEnd)
		}
	}
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
