package main

import (
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"

	chromiumflags "github.com/dialtone-dev/dialtone/internal/chromium"
	"github.com/dialtone-dev/dialtone/internal/netimpair"
	"github.com/dialtone-dev/dialtone/media/mediatest"
)

// The Chromium peer: one headless Chromium page holds two
// RTCPeerConnections, pc1 sending and pc2 receiving (chromium.html). pc1's
// audio is the speech played by WebAudio into a MediaStreamAudioDestination
// track, so no capture processing (getUserMedia's echo canceller, noise
// suppressor, gain control) touches it: what is measured is Chromium's Opus
// encoder and NetEq at their defaults. (The page still opens the fake
// microphone once and stops it at once: Chromium enumerates network
// interfaces, loopback among them, only for pages granted a microphone.) pc2's output is played into the same
// AudioContext and recorded there, so the recording and the speech share one
// clock.
//
// Chromium runs in a network namespace of its own with nothing but
// loopback, and the page server and the relay open their sockets in it:
// neither peer has another address to reach. pc1 is given a single remote
// candidate, pc2's UDP host candidate with the relay's address instead;
// pc2 is given none and learns pc1 as a peer-reflexive candidate from the
// checks the relay forwards. The only path between them is the relay, and
// a run fails if pc1's selected pair does not end at it.

//go:embed chromium.html
var chromiumPage []byte

// errChromiumNeedsRoot is returned when the browser's network namespace
// cannot be made.
var errChromiumNeedsRoot = errors.New("chromium peer: a network namespace for the browser needs root")

// chromiumRun is what one run of Chromium calling Chromium observed: the
// result the table shows, and what the checks and the test look at.
type chromiumRun struct {
	result
	// forward and backward are the relay's counts: pc1 → pc2 (the audio)
	// and pc2 → pc1 (RTCP and ICE).
	forward, backward netimpair.Stats
	// packetRate is the audio packets per second pc1 sent while measured
	// (mediaPacketRate).
	packetRate float64
	// jitterBuffer and jitterTarget are pc2's mean jitter buffer delay and
	// target delay while measured.
	jitterBuffer, jitterTarget time.Duration
	// fecPackets is how many packets pc2 counted as FEC while measured.
	fecPackets int
	// offer and answer are the session descriptions as applied.
	offer, answer string
	// selected is pc1's selected candidate pair, local → remote.
	selected string
	// clipped is how many recorded samples were out of range.
	clipped int
}

// runChromium measures Chromium calling Chromium through the relay.
func runChromium(ctx context.Context, o options, c condition, speech []int16, seed uint64) (result, error) {
	r, err := chromiumCall(ctx, o.chromium, c, speech, seed)
	return r.result, err
}

// chromiumPoll is one 100 ms sample of pc2's inbound-rtp and pc1's
// outbound-rtp statistics.
type chromiumPoll struct {
	T               float64 `json:"t"` // seconds, the page's clock
	Concealed       float64 `json:"concealed"`
	Received        float64 `json:"received"`
	Inserted        float64 `json:"inserted"`
	Removed         float64 `json:"removed"`
	JBDelay         float64 `json:"jbDelay"`
	JBEmitted       float64 `json:"jbEmitted"`
	JBTarget        float64 `json:"jbTarget"`
	PacketsSent     float64 `json:"packetsSent"`
	PacketsReceived float64 `json:"packetsReceived"`
	FECReceived     float64 `json:"fecReceived"`
}

// chromiumPair is a selected ICE candidate pair, as addr:port.
type chromiumPair struct {
	Local, Remote string
	RemoteType    string // the remote candidate's type: host, prflx, ...
}

func (p chromiumPair) String() string { return p.Local + " → " + p.Remote }

// chromiumCall runs the speech once from pc1 to pc2 through a relay
// impairing both directions as c says.
func chromiumCall(ctx context.Context, chromium string, c condition, speech []int16, seed uint64) (chromiumRun, error) {
	var run chromiumRun
	if os.Geteuid() != 0 {
		return run, errChromiumNeedsRoot
	}
	speechDur := time.Duration(len(speech)) * time.Second / mediatest.SampleRate
	ctx, cancel := context.WithTimeout(ctx, speechDur+time.Minute)
	defer cancel()

	b, err := startChromium(ctx, chromium)
	if err != nil {
		return run, err
	}
	defer b.close()

	// The page server, in the browser's namespace.
	recordings := make(chan []byte, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(chromiumPage)
	})
	mux.HandleFunc("GET /speech", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		binary.Write(w, binary.LittleEndian, speech)
	})
	mux.HandleFunc("POST /recording", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case recordings <- body:
		default:
			http.Error(w, "a recording arrived already", http.StatusConflict)
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	if err := inNetns(b.pid, func() error {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		srv.Listener = ln
		return err
	}); err != nil {
		return run, fmt.Errorf("chromium peer: %w", err)
	}
	srv.Start()
	defer srv.Close()

	frameMillis := c.frameMillis
	type prepared struct {
		Address string `json:"address"`
		Port    int    `json:"port"`
		Offer   string `json:"offer"`
		Answer  string `json:"answer"`
	}
	p, err := chromedp.Run(b.page, func(ctx context.Context, t *chromedp.Target) (prepared, error) {
		if _, err := chromedp.Navigate(srv.URL+"/")(ctx, t); err != nil {
			return prepared{}, err
		}
		return chromedp.Evaluate[prepared](fmt.Sprintf("bench.prepare(%d)", frameMillis), chromedp.EvalAwaitPromise)(ctx, t)
	})
	if err != nil {
		return run, fmt.Errorf("chromium peer: negotiating: %w", err)
	}
	run.offer, run.answer = p.Offer, p.Answer
	addr, err := netip.ParseAddr(p.Address)
	if err != nil {
		return run, fmt.Errorf("chromium peer: pc2's candidate: %w", err)
	}

	var relay *netimpair.Relay
	if err := inNetns(b.pid, func() error {
		var err error
		relay, err = netimpair.New(netimpair.Config{
			Target:  netip.AddrPortFrom(addr, uint16(p.Port)),
			Forward: c.link, Backward: c.link, Seed: seed, Lossy: audioRTP,
		})
		return err
	}); err != nil {
		return run, fmt.Errorf("chromium peer: %w", err)
	}
	defer relay.Close()

	type pairs struct {
		PC1, PC2 chromiumPair
	}
	ra := relay.Addr()
	sel, err := chromedp.Run(b.page, chromedp.Evaluate[pairs](
		fmt.Sprintf("bench.connect(%q, %d)", ra.Addr(), ra.Port()), chromedp.EvalAwaitPromise))
	if err != nil {
		return run, fmt.Errorf("chromium peer: connecting: %w", err)
	}
	run.selected = sel.PC1.String()
	if sel.PC1.Remote != ra.String() {
		return run, fmt.Errorf("chromium peer: pc1's selected pair %v does not go through the relay at %v", sel.PC1, ra)
	}
	if sel.PC2.Remote == sel.PC1.Local || sel.PC2.RemoteType != "prflx" {
		return run, fmt.Errorf("chromium peer: pc2's selected pair %v (remote %s) is not the relay's far side", sel.PC2, sel.PC2.RemoteType)
	}

	type measured struct {
		Polls   []chromiumPoll `json:"polls"`
		Clipped int            `json:"clipped"`
	}
	m, err := chromedp.Run(b.page, chromedp.Evaluate[measured](
		fmt.Sprintf("bench.measure(%d, %g)", settle.Milliseconds(), tail.Seconds()), chromedp.EvalAwaitPromise))
	if err != nil {
		return run, fmt.Errorf("chromium peer: measuring: %w", err)
	}
	var raw []byte
	select {
	case raw = <-recordings:
	case <-ctx.Done():
		return run, fmt.Errorf("chromium peer: waiting for the recording: %w", ctx.Err())
	}
	sel2, err := chromedp.Run(b.page, chromedp.Evaluate[chromiumPair]("bench.selectedPair()", chromedp.EvalAwaitPromise))
	if err != nil {
		return run, fmt.Errorf("chromium peer: %w", err)
	}
	if sel2.Remote != sel.PC1.Remote {
		return run, fmt.Errorf("chromium peer: pc1's selected pair moved to %v during the run", sel2)
	}
	b.close() // nothing sends to the relay any more: its counts are final
	run.forward, run.backward = relay.Stats()
	run.clipped = m.Clipped

	if err := run.fromPolls(m.Polls, frameMillis); err != nil {
		return run, err
	}
	received := make([]int16, len(raw)/2)
	for i := range received {
		received[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	if rms(received) < 1e-4 {
		return run, errors.New("chromium peer: pc2 played silence")
	}
	q, err := mediatest.Quality(speech, received)
	if err != nil {
		return run, fmt.Errorf("chromium peer: %w", err)
	}
	run.mos = q.MOS
	run.mouthToEar = time.Duration(q.Delay) * time.Second / mediatest.SampleRate
	if run.mouthToEar <= 0 {
		return run, fmt.Errorf("chromium peer: the speech arrived %v before it was sent: the recording is misaligned", -run.mouthToEar)
	}
	return run, nil
}

// fromPolls derives the receiver's measures from the stats polled every
// 100 ms from the start of the speech to the end of the recording (the
// speech plus tail, which covers the mouth-to-ear delay):
//
//   - concealed is Δ concealedSamples / Δ totalSamplesReceived of pc2's
//     inbound-rtp over that stretch.
//   - adjustments: an adjustment is a maximal run of consecutive polls in
//     each of which insertedSamplesForDeceleration or
//     removedSamplesForAcceleration grew (NetEq stretching or squeezing
//     the audio to move its playout delay); a run counts once however long
//     it lasts. Their number is divided by the stretch's length in
//     minutes. The dialtone peer counts its own playout's changes of delay
//     the same way, sampled every 100 ms.
//
// It also checks that pc1 sent the frame length the condition asks for
// (see mediaPacketRate).
func (r *chromiumRun) fromPolls(polls []chromiumPoll, frameMillis int) error {
	if len(polls) < 10 {
		return fmt.Errorf("chromium peer: %d stats polls, want a poll every 100 ms of the speech", len(polls))
	}
	first, last := polls[0], polls[len(polls)-1]
	minutes := (last.T - first.T) / 60
	if dr := last.Received - first.Received; dr > 0 {
		r.concealed = (last.Concealed - first.Concealed) / dr
	}
	runs, growing := 0, false
	for i := 1; i < len(polls); i++ {
		g := polls[i].Inserted > polls[i-1].Inserted || polls[i].Removed > polls[i-1].Removed
		if g && !growing {
			runs++
		}
		growing = g
	}
	r.adjustments = float64(runs) / minutes
	if de := last.JBEmitted - first.JBEmitted; de > 0 {
		r.jitterBuffer = time.Duration((last.JBDelay - first.JBDelay) / de * float64(time.Second))
		r.jitterTarget = time.Duration((last.JBTarget - first.JBTarget) / de * float64(time.Second))
	}
	r.fecPackets = int(last.FECReceived - first.FECReceived)
	r.packetRate = mediaPacketRate(polls)
	want := 1000 / float64(frameMillis)
	if math.Abs(r.packetRate-want) > 0.15*want {
		return fmt.Errorf("chromium peer: pc1 sent %.1f packets/s, not the %.0f of %d ms frames (Chromium did not take the frame length from the SDP)",
			r.packetRate, want, frameMillis)
	}
	return nil
}

// mediaPacketRate returns the rate of pc1's audio packets: the lowest
// packet rate over the 1 s windows of the polls. Chromium sends without
// DTX, so its audio packets come at 1000/frameMillis a second, but when
// its bandwidth estimator probes it adds padding-only RTP packets on the
// audio stream (there is no RTX stream to carry them), and packetsSent
// counts those too; they come in bursts of a few seconds, so some window
// is free of them.
func mediaPacketRate(polls []chromiumPoll) float64 {
	lowest := math.Inf(1)
	j := 0
	for i := range polls {
		for j < len(polls) && polls[j].T-polls[i].T < 1 {
			j++
		}
		if j == len(polls) {
			break
		}
		lowest = min(lowest, (polls[j].PacketsSent-polls[i].PacketsSent)/(polls[j].T-polls[i].T))
	}
	if math.IsInf(lowest, 1) {
		return 0
	}
	return lowest
}

func rms(x []int16) float64 {
	var s float64
	for _, v := range x {
		f := float64(v) / 32768
		s += f * f
	}
	return math.Sqrt(s / float64(max(1, len(x))))
}

// chromiumBrowser is a headless Chromium in its own network namespace,
// with a fresh profile and TMPDIR.
type chromiumBrowser struct {
	page      context.Context
	pid       int
	closeOnce sync.Once
	cancel    func()
}

func startChromium(ctx context.Context, path string) (*chromiumBrowser, error) {
	dir, err := os.MkdirTemp("", "qualitybench-chromium-")
	if err != nil {
		return nil, fmt.Errorf("chromium peer: %w", err)
	}
	profile, tmp := filepath.Join(dir, "profile"), filepath.Join(dir, "tmp")
	for _, d := range []string{profile, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("chromium peer: %w", err)
		}
	}
	opts := append(chromiumflags.Options(path, profile, tmp), chromedp.ModifyCmdFunc(isolate))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	page, cancelPage := chromedp.NewContext(allocCtx)
	b := &chromiumBrowser{page: page, cancel: func() {
		cancelPage()
		cancelAlloc() // waits for the browser to exit
		os.RemoveAll(dir)
	}}
	if err := chromedp.Do(page); err != nil {
		b.close()
		if strings.Contains(err.Error(), "operation not permitted") {
			return nil, fmt.Errorf("%w: %v", errChromiumNeedsRoot, err)
		}
		return nil, fmt.Errorf("chromium peer: starting %s: %w", path, err)
	}
	b.pid = chromedp.FromContext(page).Browser.Process().Pid
	return b, nil
}

// close stops the browser and removes its directories; it may be called
// more than once.
func (b *chromiumBrowser) close() { b.closeOnce.Do(b.cancel) }
