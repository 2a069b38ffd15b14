package netimpair

import (
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run feeds n datagrams spaced by gap through a link and returns the
// verdicts.
func run(l *link, n int, gap time.Duration) ([]verdict, []time.Time) {
	t0 := time.Unix(0, 0)
	vs := make([]verdict, n)
	sent := make([]time.Time, n)
	for i := range vs {
		sent[i] = t0.Add(time.Duration(i) * gap)
		vs[i] = l.admit(sent[i], true)
	}
	return vs, sent
}

func lossAndBursts(vs []verdict) (loss, meanBurst float64) {
	var lost, bursts int
	for i, v := range vs {
		if v.drop {
			lost++
			if i == 0 || !vs[i-1].drop {
				bursts++
			}
		}
	}
	return float64(lost) / float64(len(vs)), float64(lost) / float64(max(1, bursts))
}

func TestLinkLossStatistics(t *testing.T) {
	const n = 100000
	for _, tc := range []struct {
		name            string
		link            Link
		loss, meanBurst float64
	}{
		{"random 5%", Link{Loss: 0.05}, 0.05, 1 / 0.95},
		{"bursts 10% of 4", Link{Burst: Bursts(0.10, 4)}, 0.10, 4},
		{"bursts 3% of 2", Link{Burst: Bursts(0.03, 2)}, 0.03, 2},
		{"clean", Link{}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, _ := run(newLink(tc.link, 7, 1), n, 20*time.Millisecond)
			loss, burst := lossAndBursts(vs)
			t.Logf("loss %.4f, mean burst %.2f", loss, burst)
			assert.InDelta(t, tc.loss, loss, 0.1*tc.loss+1e-9)
			assert.InDelta(t, tc.meanBurst, burst, 0.1*tc.meanBurst+1e-9)
		})
	}
}

func TestLinkDelayJitterAndOrder(t *testing.T) {
	const n = 50000
	l := Link{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}
	vs, sent := run(newLink(l, 3, 1), n, 20*time.Millisecond)
	var d []float64
	for i, v := range vs {
		require.False(t, v.drop)
		if i > 0 {
			require.False(t, v.at.Before(vs[i-1].at), "datagram %d overtook %d", i, i-1)
		}
		d = append(d, v.at.Sub(sent[i]).Seconds()*1000)
	}
	mean, sd := meanSD(d)
	t.Logf("delay %.2f ± %.2f ms", mean, sd)
	// The queue order lifts the early draws a little: the mean rises and
	// the spread narrows by well under a millisecond at 20 ms spacing.
	assert.InDelta(t, 20, mean, 1.5)
	assert.InDelta(t, 10, sd, 1.5)
}

func TestLinkReorder(t *testing.T) {
	const n = 50000
	vs, sent := run(newLink(Link{Delay: 30 * time.Millisecond, Reorder: 0.02}, 5, 1), n, 20*time.Millisecond)
	var early, overtook int
	for i, v := range vs {
		if v.reordered {
			early++
			assert.Equal(t, sent[i], v.at)
		}
		if i > 0 && v.at.Before(vs[i-1].at) {
			overtook++
		}
	}
	assert.InDelta(t, 0.02, float64(early)/n, 0.002)
	assert.InDelta(t, 0.02, float64(overtook)/n, 0.002, "each one overtakes the datagram before it")
}

func TestLinkRepeatsWithSeed(t *testing.T) {
	cfg := Link{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.05, Burst: Bursts(0.1, 3), Reorder: 0.01}
	a, _ := run(newLink(cfg, 42, 1), 2000, 20*time.Millisecond)
	b, _ := run(newLink(cfg, 42, 1), 2000, 20*time.Millisecond)
	c, _ := run(newLink(cfg, 43, 1), 2000, 20*time.Millisecond)
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, c)
}

// TestLinkSparesWhatIsNotLossy: datagrams that are not lossy are never
// dropped and do not move the burst model, so the lossy ones between them
// lose the configured share in bursts of the configured length, counted
// in lossy datagrams, however much other traffic runs between them.
func TestLinkSparesWhatIsNotLossy(t *testing.T) {
	l := newLink(Link{Burst: Bursts(0.1, 4)}, 7, 1)
	now := time.Now()
	var vs []verdict
	for i := range 20000 {
		for range i % 3 { // padding, probes, control between them
			require.False(t, l.admit(now, false).drop)
		}
		vs = append(vs, l.admit(now, true))
	}
	loss, burst := lossAndBursts(vs)
	t.Logf("lossy datagrams: %.1f %% lost in bursts of %.2f", 100*loss, burst)
	assert.InDelta(t, 0.10, loss, 0.015)
	assert.InDelta(t, 4, burst, 0.4)
}

func meanSD(v []float64) (float64, float64) {
	var s, ss float64
	for _, x := range v {
		s += x
	}
	mean := s / float64(len(v))
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}

// TestRelayOnLoopback sends datagrams both ways through a relay on
// 127.0.0.1 and checks the measured loss and one-way delay against the
// configuration.
func TestRelayOnLoopback(t *testing.T) {
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	a, err := net.ListenUDP("udp4", lo)
	require.NoError(t, err)
	defer a.Close()
	b, err := net.ListenUDP("udp4", lo)
	require.NoError(t, err)
	defer b.Close()

	r, err := New(Config{
		Target:   b.LocalAddr().(*net.UDPAddr).AddrPort(),
		Forward:  Link{Delay: 30 * time.Millisecond, Jitter: 4 * time.Millisecond, Loss: 0.10},
		Backward: Link{Delay: 5 * time.Millisecond, Burst: Bursts(0.2, 3)},
		Seed:     1,
	})
	require.NoError(t, err)
	defer r.Close()

	const n, gap = 300, 10 * time.Millisecond
	start := time.Now()
	stamp := func(i int) []byte {
		p := make([]byte, 16)
		binary.BigEndian.PutUint64(p, uint64(i))
		binary.BigEndian.PutUint64(p[8:], uint64(time.Since(start)))
		return p
	}
	front := net.UDPAddrFromAddrPort(r.Addr())

	// B echoes every datagram it gets (with a fresh timestamp) and records
	// the one-way delay A → B.
	type got struct {
		seq   int
		delay time.Duration
	}
	atB := make(chan []got, 1)
	go func() {
		var gs []got
		buf := make([]byte, 64)
		for {
			b.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			m, from, err := b.ReadFromUDP(buf)
			if err != nil {
				atB <- gs
				return
			}
			if m != 16 {
				continue
			}
			seq := int(binary.BigEndian.Uint64(buf))
			gs = append(gs, got{seq, time.Since(start) - time.Duration(binary.BigEndian.Uint64(buf[8:]))})
			b.WriteToUDP(stamp(seq), from)
		}
	}()

	// A counts the echoes as they come, so none waits in its socket.
	atA := make(chan int, 1)
	go func() {
		echoes := 0
		buf := make([]byte, 64)
		for {
			a.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
			if _, _, err := a.ReadFromUDP(buf); err != nil {
				atA <- echoes
				return
			}
			echoes++
		}
	}()

	tick := time.NewTicker(gap)
	for i := range n {
		_, err := a.WriteToUDP(stamp(i), front)
		require.NoError(t, err)
		<-tick.C
	}
	tick.Stop()
	gs, echoes := <-atB, <-atA

	fwd, bwd := r.Stats()
	t.Logf("forward %+v, backward %+v", fwd, bwd)
	assert.Equal(t, n, fwd.Received)
	assert.Equal(t, fwd.Received, fwd.Dropped+fwd.Sent)
	assert.Equal(t, fwd.Sent, len(gs), "every relayed datagram reached B")
	assert.InDelta(t, 0.10, 1-float64(len(gs))/n, 0.04, "forward loss")
	assert.Equal(t, len(gs), bwd.Received)
	assert.Equal(t, bwd.Sent, echoes, "every relayed echo reached A")
	assert.InDelta(t, 0.20, 1-float64(echoes)/float64(len(gs)), 0.08, "backward loss")

	var ms []float64
	for _, g := range gs {
		ms = append(ms, g.delay.Seconds()*1000)
	}
	mean, sd := meanSD(ms)
	t.Logf("A → B delay %.2f ± %.2f ms over %d datagrams", mean, sd, len(ms))
	// The relay adds loopback and scheduling time (a fraction of a
	// millisecond on an idle machine, a few on a loaded one), which
	// raises the mean and widens the spread a little.
	assert.GreaterOrEqual(t, mean, 29.5)
	assert.Less(t, mean, 34.0)
	assert.Greater(t, sd, 3.0)
	assert.Less(t, sd, 6.5)
}

func TestRelayRefusesNonLoopbackAndIgnoresStrangers(t *testing.T) {
	_, err := New(Config{Target: netip.MustParseAddrPort("192.0.2.1:5000")})
	require.Error(t, err)

	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	b, err := net.ListenUDP("udp4", lo)
	require.NoError(t, err)
	defer b.Close()
	r, err := New(Config{Target: b.LocalAddr().(*net.UDPAddr).AddrPort()})
	require.NoError(t, err)
	defer r.Close()

	// A stranger writing to the back socket is not B: nothing is relayed.
	stranger, err := net.ListenUDP("udp4", lo)
	require.NoError(t, err)
	defer stranger.Close()
	back := r.back.LocalAddr().(*net.UDPAddr)
	for _, p := range [][]byte{{}, {1}, make([]byte, 1500)} {
		_, err = stranger.WriteToUDP(p, back)
		require.NoError(t, err)
	}
	// Empty and large datagrams from A pass through unchanged.
	for _, p := range [][]byte{{}, make([]byte, 1500)} {
		_, err = stranger.WriteToUDP(p, net.UDPAddrFromAddrPort(r.Addr()))
		require.NoError(t, err)
		buf := make([]byte, 2000)
		b.SetReadDeadline(time.Now().Add(2 * time.Second))
		m, _, err := b.ReadFromUDP(buf)
		require.NoError(t, err, "a %d-byte datagram", len(p))
		assert.Equal(t, len(p), m)
	}
	_, bwd := r.Stats()
	assert.Zero(t, bwd.Received)
}
