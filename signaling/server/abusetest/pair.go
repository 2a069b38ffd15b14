package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
)

// roundTripTimeout is how long alice waits for bob's echo before counting
// the round trip lost.
const roundTripTimeout = 5 * time.Second

// pair is the well-behaved users: alice and bob, who trade round trips,
// and the bot, which answers every invite `busy`.
type pair struct {
	alice, bob, bot *signaling.Client

	disconnects atomic.Int64 // times a well-behaved user lost its connection
	delivered   atomic.Int64 // attackers' messages that reached bob or the bot

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// wellBehaved reports whether user is one of the pair's.
func wellBehaved(user string) bool {
	return user == "alice" || user == "bob" || user == "bot"
}

// newPair connects alice, bob and the bot to the server at url.
func newPair(url string) (*pair, error) {
	p := &pair{}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	dialCtx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	for _, u := range []struct {
		name string
		c    **signaling.Client
	}{{"alice", &p.alice}, {"bob", &p.bob}, {"bot", &p.bot}} {
		c, err := signaling.Dial(dialCtx, url+"?user="+u.name, signaling.DialConfig{})
		if err != nil {
			p.close()
			return nil, fmt.Errorf("%s: %w", u.name, err)
		}
		<-c.Incoming() // ready
		*u.c = c
		p.wg.Go(func() {
			for st := range c.Status() {
				if st.State == signaling.StateDown || (st.State == signaling.StateClosed && st.Err != nil) {
					p.disconnects.Add(1)
				}
			}
		})
	}
	p.wg.Go(func() {
		for m := range p.bob.Incoming() {
			switch {
			case m.Type == signaling.TypeSignal && m.From == "alice":
				_ = p.bob.Send(p.ctx, signaling.Message{Type: signaling.TypeSignal, To: "alice", Call: m.Call, Data: m.Data})
			case (m.Type == signaling.TypeInvite || m.Type == signaling.TypeSignal) && !wellBehaved(m.From):
				p.delivered.Add(1)
			}
		}
	})
	p.wg.Go(func() {
		for m := range p.bot.Incoming() {
			if m.Type == signaling.TypeInvite {
				if !wellBehaved(m.From) {
					p.delivered.Add(1)
				}
				_ = p.bot.Send(p.ctx, signaling.Message{Type: signaling.TypeBusy, To: m.From, Call: m.Call})
			}
		}
	})
	return p, nil
}

// close disconnects the pair and waits for its goroutines.
func (p *pair) close() {
	p.cancel()
	for _, c := range []*signaling.Client{p.alice, p.bob, p.bot} {
		if c != nil {
			_ = c.Close()
		}
	}
	p.wg.Wait()
}

// measure has alice send n signals to bob, one each interval, bob echo
// each, and returns the round-trip times of those that came back within
// roundTripTimeout and the number that did not.
func (p *pair) measure(n int, interval time.Duration) (rtts []time.Duration, lost int) {
	rtts = make([]time.Duration, 0, n)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := range n {
		<-tick.C
		call := "rt" + strconv.Itoa(i)
		start := time.Now()
		err := p.alice.Send(p.ctx, signaling.Message{Type: signaling.TypeSignal, To: "bob", Call: call, Data: []byte(`{"candidate":{}}`)})
		if err != nil {
			lost++
			continue
		}
		timeout := time.NewTimer(roundTripTimeout)
	wait:
		for {
			select {
			case m := <-p.alice.Incoming():
				if m.Type == signaling.TypeSignal && m.Call == call {
					rtts = append(rtts, time.Since(start))
					break wait
				}
			case <-timeout.C:
				lost++
				break wait
			}
		}
		timeout.Stop()
	}
	return rtts, lost
}
