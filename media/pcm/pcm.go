package pcm

// Reader is a PCM source: a tone, a prompt ([Player]), a jitter buffer, a
// microphone's buffer. ReadPCM fills p with the next samples and returns how
// many it wrote; at the end of a finite source it returns io.EOF (with the
// rest of p silent).
type Reader interface {
	ReadPCM(p []int16) (int, error)
}

// Writer is a PCM sink: an encoder, a WAV file, a speaker's buffer, a
// [Recorder].
type Writer interface {
	WritePCM(p []int16) (int, error)
}
