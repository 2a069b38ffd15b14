//go:build linux

package janustest

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
	"golang.org/x/sys/unix"
)

// netns is one OS thread that has joined another process's network
// namespace: functions run on it open their sockets there, and a socket stays
// in the namespace it was opened in whichever goroutine uses it afterwards.
// The thread is never unlocked, so it ends with its goroutine instead of
// going back to the scheduler in a foreign namespace.
type netns struct {
	calls chan func()
	done  chan struct{}
}

// enterNetns starts the thread in the network namespace of process pid.
func enterNetns(pid int) (*netns, error) {
	n := &netns{calls: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer close(n.done)
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("janustest: network namespace of %d: %w", pid, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("janustest: joining the network namespace of %d: %w", pid, err)
			return
		}
		errc <- nil
		for f := range n.calls {
			f()
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return n, nil
}

// do runs f on the namespace's thread and waits for it.
func (n *netns) do(f func()) {
	ran := make(chan struct{})
	n.calls <- func() { f(); close(ran) }
	<-ran
}

// close ends the thread; no do may follow.
func (n *netns) close() {
	close(n.calls)
	<-n.done
}

// dialContext dials from inside the namespace.
func (n *netns) dialContext(ctx context.Context, network, addr string) (c net.Conn, err error) {
	n.do(func() { c, err = new(net.Dialer).DialContext(ctx, network, addr) })
	return c, err
}

// nsNet is a pion transport.Net whose interfaces and sockets are those of
// the namespace, so that a PeerConnection in this (host-namespace) process
// gathers and binds on the veth end inside it.
type nsNet struct {
	*stdnet.Net
	ns *netns
}

func newNsNet(ns *netns) (*nsNet, error) {
	var std *stdnet.Net
	var err error
	ns.do(func() { std, err = stdnet.NewNet() })
	if err != nil {
		return nil, fmt.Errorf("janustest: interfaces in the namespace: %w", err)
	}
	return &nsNet{Net: std, ns: ns}, nil
}

func (n *nsNet) ListenPacket(network, address string) (c net.PacketConn, err error) {
	n.ns.do(func() { c, err = n.Net.ListenPacket(network, address) })
	return c, err
}

func (n *nsNet) ListenUDP(network string, laddr *net.UDPAddr) (c transport.UDPConn, err error) {
	n.ns.do(func() { c, err = n.Net.ListenUDP(network, laddr) })
	return c, err
}

func (n *nsNet) ListenTCP(network string, laddr *net.TCPAddr) (l transport.TCPListener, err error) {
	n.ns.do(func() { l, err = n.Net.ListenTCP(network, laddr) })
	return l, err
}

func (n *nsNet) Dial(network, address string) (c net.Conn, err error) {
	n.ns.do(func() { c, err = n.Net.Dial(network, address) })
	return c, err
}

func (n *nsNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (c transport.UDPConn, err error) {
	n.ns.do(func() { c, err = n.Net.DialUDP(network, laddr, raddr) })
	return c, err
}

func (n *nsNet) DialTCP(network string, laddr, raddr *net.TCPAddr) (c transport.TCPConn, err error) {
	n.ns.do(func() { c, err = n.Net.DialTCP(network, laddr, raddr) })
	return c, err
}

func (n *nsNet) CreateDialer(d *net.Dialer) transport.Dialer {
	return nsDialer{ns: n.ns, d: n.Net.CreateDialer(d)}
}

func (n *nsNet) CreateListenConfig(lc *net.ListenConfig) transport.ListenConfig {
	return nsListenConfig{ns: n.ns, lc: n.Net.CreateListenConfig(lc)}
}

type nsDialer struct {
	ns *netns
	d  transport.Dialer
}

func (d nsDialer) Dial(network, address string) (c net.Conn, err error) {
	d.ns.do(func() { c, err = d.d.Dial(network, address) })
	return c, err
}

type nsListenConfig struct {
	ns *netns
	lc transport.ListenConfig
}

func (l nsListenConfig) Listen(ctx context.Context, network, address string) (ln net.Listener, err error) {
	l.ns.do(func() { ln, err = l.lc.Listen(ctx, network, address) })
	return ln, err
}

func (l nsListenConfig) ListenPacket(ctx context.Context, network, address string) (c net.PacketConn, err error) {
	l.ns.do(func() { c, err = l.lc.ListenPacket(ctx, network, address) })
	return c, err
}
