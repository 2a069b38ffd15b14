package main

import (
	"github.com/dialtone-dev/dialtone/signaling"
)

// watchedTransport is the signaling transport the phone uses, with every
// connection change also told to onChange (the status line), so the user
// sees when signaling is lost and when it is back. The phone reads the
// same changes from Status, in order.
type watchedTransport struct {
	signaling.Transport
	status *signaling.StatusQueue
	done   chan struct{}
}

func watchTransport(tr signaling.Transport, onChange func(signaling.Status)) *watchedTransport {
	w := &watchedTransport{Transport: tr, status: signaling.NewStatusQueue(16), done: make(chan struct{})}
	go w.relay(tr.Status(), onChange)
	return w
}

// relay runs until the transport closes its Status (with Incoming, when
// it stops for good).
func (w *watchedTransport) relay(in <-chan signaling.Status, onChange func(signaling.Status)) {
	defer close(w.done)
	defer w.status.Close()
	for st := range in {
		onChange(st)
		w.status.Push(st)
	}
}

// Status implements signaling.Transport.
func (w *watchedTransport) Status() <-chan signaling.Status { return w.status.C() }

// Close implements signaling.Transport; the relay has ended when it
// returns.
func (w *watchedTransport) Close() error {
	err := w.Transport.Close()
	<-w.done
	return err
}
