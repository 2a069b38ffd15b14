package netimpair

import (
	"container/heap"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Config configures a Relay.
type Config struct {
	// Target is the endpoint (B) that datagrams arriving at [Relay.Addr]
	// are relayed to. It must be a loopback address.
	Target netip.AddrPort
	// Forward shapes the direction A → B, Backward B → A.
	Forward, Backward Link
	// Seed makes the impairments repeat: equal seeds and equal arrival
	// order give equal losses, delays and reorderings.
	Seed uint64
	// Lossy chooses the datagrams the loss of Forward and Backward
	// applies to (nil: all); the others are delayed but never dropped,
	// and do not move the burst model on. Two peers that send different
	// extra traffic (probes, padding, control) then lose the same share
	// of what is measured.
	Lossy func(p []byte) bool
}

// Stats counts the datagrams of one direction.
type Stats struct {
	Received  int // arrived at the relay
	Dropped   int // lost on purpose
	Reordered int // sent ahead of the delay line
	Sent      int // relayed
}

// Relay sits between endpoint A, which sends to Addr, and endpoint B
// (Config.Target): it relays A's datagrams to B from a second socket, and
// B's replies to that socket back to A (the latest address A sent from),
// impairing each direction. Datagrams to the second socket from anywhere
// but B are ignored.
type Relay struct {
	front, back *net.UDPConn
	target      *net.UDPAddr
	fwd, bwd    *direction
	wg          sync.WaitGroup
	done        chan struct{}
	closeOnce   sync.Once

	mu    sync.Mutex
	peerA *net.UDPAddr // guarded by mu
}

// New starts a relay on two fresh 127.0.0.1 ports.
func New(cfg Config) (*Relay, error) {
	if !cfg.Target.IsValid() || !cfg.Target.Addr().IsLoopback() {
		return nil, fmt.Errorf("netimpair: target %v is not a loopback address", cfg.Target)
	}
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	front, err := net.ListenUDP("udp4", lo)
	if err != nil {
		return nil, fmt.Errorf("netimpair: %w", err)
	}
	back, err := net.ListenUDP("udp4", lo)
	if err != nil {
		front.Close()
		return nil, fmt.Errorf("netimpair: %w", err)
	}
	r := &Relay{
		front: front, back: back, target: net.UDPAddrFromAddrPort(cfg.Target),
		done: make(chan struct{}),
	}
	r.fwd = newDirection(newLink(cfg.Forward, cfg.Seed, 1), cfg.Lossy, func(p []byte) { back.WriteToUDP(p, r.target) })
	r.bwd = newDirection(newLink(cfg.Backward, cfg.Seed, 2), cfg.Lossy, func(p []byte) {
		r.mu.Lock()
		a := r.peerA
		r.mu.Unlock()
		if a != nil {
			front.WriteToUDP(p, a)
		}
	})
	r.wg.Add(4)
	go r.read(front, r.fwd, true)
	go r.read(back, r.bwd, false)
	go r.fwd.run(&r.wg, r.done)
	go r.bwd.run(&r.wg, r.done)
	return r, nil
}

// Addr is where endpoint A sends.
func (r *Relay) Addr() netip.AddrPort { return r.front.LocalAddr().(*net.UDPAddr).AddrPort() }

// Stats returns the counts so far, A → B and B → A.
func (r *Relay) Stats() (forward, backward Stats) { return r.fwd.stats(), r.bwd.stats() }

// Close stops the relay; datagrams still delayed are dropped.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		close(r.done)
		r.front.Close()
		r.back.Close()
	})
	r.wg.Wait()
	return nil
}

func (r *Relay) read(c *net.UDPConn, d *direction, fromA bool) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP port unreachable reported on a later read
		}
		if fromA {
			r.mu.Lock()
			r.peerA = from
			r.mu.Unlock()
		} else if !from.IP.Equal(r.target.IP) || from.Port != r.target.Port {
			continue
		}
		d.admit(time.Now(), append([]byte(nil), buf[:n]...))
	}
}

// direction is one way through the relay: its link and the datagrams
// waiting for their departure time.
type direction struct {
	send  func([]byte)
	lossy func([]byte) bool
	wake  chan struct{}

	mu    sync.Mutex
	link  *link      // guarded by mu
	queue departures // guarded by mu
	seq   uint64     // guarded by mu: ties in departure time leave in arrival order
	st    Stats      // guarded by mu
}

func newDirection(l *link, lossy func([]byte) bool, send func([]byte)) *direction {
	return &direction{link: l, lossy: lossy, send: send, wake: make(chan struct{}, 1)}
}

func (d *direction) admit(now time.Time, p []byte) {
	lossy := d.lossy == nil || d.lossy(p)
	d.mu.Lock()
	v := d.link.admit(now, lossy)
	d.st.Received++
	switch {
	case v.drop:
		d.st.Dropped++
	default:
		if v.reordered {
			d.st.Reordered++
		}
		d.seq++
		heap.Push(&d.queue, departure{at: v.at, seq: d.seq, p: p})
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *direction) stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// run sends each queued datagram at its departure time until done closes.
func (d *direction) run(wg *sync.WaitGroup, done <-chan struct{}) {
	defer wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var wait time.Duration = -1
		var due []byte
		ready := false
		d.mu.Lock()
		if len(d.queue) > 0 {
			if w := time.Until(d.queue[0].at); w > 0 {
				wait = w
			} else {
				due, ready = heap.Pop(&d.queue).(departure).p, true
				d.st.Sent++
			}
		}
		d.mu.Unlock()
		if ready {
			d.send(due)
			continue
		}
		var tick <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-done:
			return
		case <-d.wake:
		case <-tick:
		}
	}
}

type departure struct {
	at  time.Time
	seq uint64
	p   []byte
}

// departures is a min-heap by departure time, then arrival.
type departures []departure

func (h departures) Len() int { return len(h) }
func (h departures) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h departures) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *departures) Push(x any)   { *h = append(*h, x.(departure)) }
func (h *departures) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
