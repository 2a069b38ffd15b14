package mediatest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/dialtone-dev/dialtone/internal/testenv"
	"os/exec"
	"testing"
	"time"
)

// Utterance is one line of synthesised speech: an espeak-ng voice (language
// plus optional "+variant") and the text it says.
type Utterance struct {
	Voice string
	Text  string
}

// SpeechSet returns the utterances the quality tests and benchmarks speak:
// four voices (male and female, two accents), sentences from the Harvard
// lists with commas and full stops, so each utterance has pauses between
// phrases as well as running speech. Each one lasts 6 to 8 seconds.
func SpeechSet() []Utterance {
	return []Utterance{
		{"en-us", "The birch canoe slid on the smooth planks. Glue the sheet, to the dark blue background. It is easy to tell the depth of a well."},
		{"en-gb+f3", "These days a chicken leg is a rare dish. Rice is often served, in round bowls. The juice of lemons makes fine punch."},
		{"en-us+m3", "The box was thrown beside the parked truck. The hogs were fed, chopped corn and garbage. Four hours of steady work faced us."},
		{"en-gb-scotland+f4", "A large size in stockings is hard to sell. The boy was there, when the sun rose. A rod is used to catch pink salmon."},
	}
}

// ErrNoSynthesizer is returned by [Synthesize] when espeak-ng or sox is not
// installed.
var ErrNoSynthesizer = errors.New("mediatest: espeak-ng and sox are needed to synthesise speech")

// Synthesize speaks u with espeak-ng (150 words a minute, a 10 ms gap between
// words) and resamples it with sox to 48 kHz mono int16. espeak-ng is
// deterministic, so equal utterances give equal samples on one machine.
func Synthesize(ctx context.Context, u Utterance) ([]int16, error) {
	espeak, err1 := exec.LookPath("espeak-ng")
	sox, err2 := exec.LookPath("sox")
	if err1 != nil || err2 != nil {
		return nil, ErrNoSynthesizer
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	wav, err := exec.CommandContext(ctx, espeak, "-v", u.Voice, "-s", "150", "-g", "1", "--stdout", u.Text).Output()
	if err != nil {
		return nil, fmt.Errorf("mediatest: espeak-ng -v %s: %w", u.Voice, err)
	}
	cmd := exec.CommandContext(ctx, sox, "-t", "wav", "-", "-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", "48000", "-L", "-")
	cmd.Stdin = bytes.NewReader(wav)
	raw, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("mediatest: sox: %w", err)
	}
	pcm := make([]int16, len(raw)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	if len(pcm) < SampleRate/2 {
		return nil, fmt.Errorf("mediatest: espeak-ng -v %s gave %d samples", u.Voice, len(pcm))
	}
	return pcm, nil
}

// Speech synthesises u for a test (see [Synthesize]). Without espeak-ng or
// sox it skips the test, except under CI=true or DIALTONE_FULL=1, where it
// fails it (internal/testenv): CI installs both (scripts/deps.sh).
func Speech(t testing.TB, u Utterance) []int16 {
	t.Helper()
	pcm, err := Synthesize(context.Background(), u)
	if errors.Is(err, ErrNoSynthesizer) {
		testenv.Missing(t, "%v (scripts/deps.sh installs them with DIALTONE_FULL=1)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}
