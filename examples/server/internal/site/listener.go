package site

import (
	"net"
	"sync"
)

// limitPerAddr wraps ln so that at most max connections from one remote
// address are open at once; past that a new one is closed as soon as it is
// accepted. It bounds what one address can hold before any request, TLS
// handshake or authentication: idle keep-alives, slow handshakes, upgrades
// that never finish.
func limitPerAddr(ln net.Listener, max int) net.Listener {
	return &addrLimitListener{Listener: ln, max: max, open: make(map[string]int)}
}

type addrLimitListener struct {
	net.Listener
	max int

	mu   sync.Mutex
	open map[string]int
}

// Accept returns the next connection its address may open.
func (l *addrLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteHost(c)
		l.mu.Lock()
		ok := l.open[addr] < l.max
		if ok {
			l.open[addr]++
		}
		l.mu.Unlock()
		if ok {
			return &countedConn{Conn: c, l: l, addr: addr}, nil
		}
		_ = c.Close()
	}
}

func (l *addrLimitListener) release(addr string) {
	l.mu.Lock()
	if l.open[addr]--; l.open[addr] <= 0 {
		delete(l.open, addr)
	}
	l.mu.Unlock()
}

func remoteHost(c net.Conn) string {
	a := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return a
}

// countedConn gives its address's place back once, on Close.
type countedConn struct {
	net.Conn
	l    *addrLimitListener
	addr string
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}
