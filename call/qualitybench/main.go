// Command qualitybench measures speech quality the way a listener hears it:
// synthesised speech (espeak-ng) goes through a call whose UDP path, both
// ways, runs through an impairing relay on 127.0.0.1 (internal/netimpair:
// delay, jitter, random and bursty loss, seeded; the loss applies to the
// audio packets alone, see audioRTP), and what the far end
// plays is scored with ViSQOL's speech mode (mediatest.Quality, MOS-LQO
// 1–5). Each condition runs for dialtone at its defaults and, as the
// anchor, for Chromium calling Chromium through the same relay, in one run
// of the program. It prints, per condition and peer, the medians over the
// runs of: the quality score, mouth-to-ear delay, the share of played
// audio that was concealment, and playout adjustments (changes of the
// playout delay) per minute.
//
//	go run ./call/qualitybench                  # every condition, 3 runs each
//	go run ./call/qualitybench -runs 1 -only clean
//	go run ./call/qualitybench -peers dialtone -complexity 5
//	go run ./call/qualitybench -peers dialtone -capacity
//
// It needs espeak-ng and sox, and chromium for the anchor
// (scripts/deps.sh installs them). Run it on a machine nothing else loads:
// both peers play in real time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	chromiumflags "github.com/dialtone-dev/dialtone/internal/chromium"
	"github.com/dialtone-dev/dialtone/internal/netimpair"
	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// condition is one network path, applied to both directions, and the
// frame length both peers send.
type condition struct {
	name        string
	link        netimpair.Link
	frameMillis int
}

func conditions() []condition {
	const ms = time.Millisecond
	jitter := netimpair.Link{Delay: 20 * ms, Jitter: 10 * ms}
	lossJitter := jitter
	lossJitter.Loss = 0.05
	return []condition{
		{"clean", netimpair.Link{}, 20},
		{"5% loss", netimpair.Link{Loss: 0.05}, 20},
		{"20±10 ms jitter", jitter, 20},
		{"5% loss + 20±10 ms jitter", lossJitter, 20},
		{"10% loss in bursts of 4", netimpair.Link{Burst: netimpair.Bursts(0.10, 4)}, 20},
		{"5% loss + 20±10 ms jitter, 10 ms frames", lossJitter, 10},
	}
}

// audioRTP reports whether a datagram is an RTP packet with a payload (its
// header is in the clear under SRTP): the datagrams the relay's loss
// applies to. ICE, DTLS, RTCP and padding-only packets (Chromium probes
// the bandwidth with those, on the audio stream) are delayed but never
// dropped, so each peer loses the condition's share of its audio whatever
// else it sends.
func audioRTP(p []byte) bool {
	if len(p) < 12 || p[0]>>6 != 2 || p[0]&0x20 != 0 {
		return false
	}
	pt := p[1] & 0x7f
	return pt < 72 || pt > 79 // RTCP packet types 200–207 read as 72–79
}

// settle is how long a call runs before the speech starts: the buffers'
// first adaptation to the path is left out of the figures. tail is how
// long the receiver's output is recorded after the speech ends, more than
// any mouth-to-ear delay.
const settle, tail = 5 * time.Second, time.Second

// result is what one run of one condition measured at the receiving end.
type result struct {
	// mos is ViSQOL's MOS-LQO of the received speech against the sent.
	mos float64
	// mouthToEar is how long after the sender's microphone captured the
	// speech the receiver played it.
	mouthToEar time.Duration
	// concealed is the share of the received audio (from the first
	// packet to the end of the speech) that the receiver concealed.
	concealed float64
	// adjustments is how many times the receiver changed its playout
	// delay, per minute of audio.
	adjustments float64
}

// options are the command line's settings.
type options struct {
	runs       int
	only       string
	peers      []string
	complexity int
	capacity   bool
	chromium   string
	seed       uint64
}

// peer runs one condition once: the speech goes from one end to the
// other through a relay impairing the path as c says.
type peer func(ctx context.Context, o options, c condition, speech []int16, seed uint64) (result, error)

var peers = map[string]peer{
	"dialtone": runDialtone,
	"chromium": runChromium,
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "qualitybench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("qualitybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var peerList string
	fs.IntVar(&o.runs, "runs", 3, "runs of each condition (the table shows medians)")
	fs.StringVar(&o.only, "only", "", "run only the conditions whose name contains this")
	fs.StringVar(&peerList, "peers", "dialtone,chromium", "comma-separated peers to measure: dialtone, chromium")
	fs.IntVar(&o.complexity, "complexity", 0, "dialtone's Opus complexity 1-10 (0: its default)")
	fs.BoolVar(&o.capacity, "capacity", false, "dialtone in its capacity profile (call.CapacityCodec; -complexity still applies)")
	fs.StringVar(&o.chromium, "chromium", chromiumflags.DefaultPath, "the Chromium binary")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the impairments (run i uses seed+i)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, p := range strings.Split(peerList, ",") {
		if _, ok := peers[p]; !ok {
			err := fmt.Errorf("-peers: unknown peer %q (want dialtone, chromium)", p)
			fmt.Fprintln(stderr, err)
			return o, err
		}
		o.peers = append(o.peers, p)
	}
	if o.runs < 1 || o.complexity < 0 || o.complexity > 10 {
		err := errors.New("-runs must be positive and -complexity 0-10")
		fmt.Fprintln(stderr, err)
		return o, err
	}
	return o, nil
}

// speech is the material every run speaks: two utterances of the speech
// set (two voices), 400 ms of silence before, between and after.
func speech(ctx context.Context) ([]int16, error) {
	gap := make([]int16, mediatest.SampleRate*4/10)
	out := slices.Clone(gap)
	for _, u := range mediatest.SpeechSet()[:2] {
		s, err := mediatest.Synthesize(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(append(out, s...), gap...)
	}
	return out, nil
}

func run(ctx context.Context, o options, out io.Writer) error {
	sp, err := speech(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintf(tw, "condition\tpeer\tMOS-LQO\tmouth-to-ear ms\tconcealed %%\tadjustments/min\t\n")
	for _, c := range conditions() {
		if !strings.Contains(c.name, o.only) {
			continue
		}
		for _, name := range o.peers {
			var rs []result
			for i := range o.runs {
				r, err := peers[name](ctx, o, c, sp, o.seed+uint64(i))
				if err != nil {
					return fmt.Errorf("%s, %s, run %d: %w", c.name, name, i+1, err)
				}
				fmt.Fprintf(os.Stderr, "%s, %s, run %d: MOS %.2f, %v, concealed %.1f %%, %.1f adjustments/min\n",
					c.name, name, i+1, r.mos, r.mouthToEar.Round(time.Millisecond), 100*r.concealed, r.adjustments)
				rs = append(rs, r)
			}
			m := medians(rs)
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%d\t%.1f\t%.1f\t\n", c.name, name,
				m.mos, m.mouthToEar.Milliseconds(), 100*m.concealed, m.adjustments)
		}
	}
	return tw.Flush()
}

// medians returns each measure's median over rs.
func medians(rs []result) result {
	med := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return result{
		mos:         med(func(r result) float64 { return r.mos }),
		mouthToEar:  time.Duration(med(func(r result) float64 { return float64(r.mouthToEar) })),
		concealed:   med(func(r result) float64 { return r.concealed }),
		adjustments: med(func(r result) float64 { return r.adjustments }),
	}
}
