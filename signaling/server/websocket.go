package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dialtone-dev/dialtone/signaling"
)

type wsUpgrader struct {
	up websocket.Upgrader
}

func newUpgrader(s *Server) wsUpgrader {
	check := s.cfg.CheckOrigin
	if check == nil {
		check = s.defaultCheckOrigin
	}
	return wsUpgrader{up: websocket.Upgrader{
		HandshakeTimeout: s.cfg.WriteTimeout,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		// gorilla writes only the handshake; every frame goes through
		// wsWriter (see gorillaConn): connections hold no write buffer of
		// gorilla's.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     check,
	}}
}

func (s *Server) defaultCheckOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// closeCode maps why the core ended a conn to a WebSocket close code.
func closeCode(code string) int {
	switch code {
	case signaling.CodeReplaced:
		return signaling.CloseReplaced
	case signaling.CodeTokenExpired:
		return signaling.CloseTokenExpired
	case signaling.CodeRevoked:
		return signaling.CloseRevoked
	case signaling.CodeShutdown:
		return websocket.CloseGoingAway
	case signaling.CodeAbusive, signaling.CodeSlowConsumer:
		return websocket.ClosePolicyViolation
	}
	return websocket.CloseNormalClosure
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	log := s.cfg.Logger
	if err := s.hub.ready(); err != nil {
		// Not in the cluster yet, or shutting down: clients retry later.
		text := "server not ready"
		if errors.Is(err, ErrServerClosed) {
			text = "server shutting down"
		}
		w.Header().Set("Retry-After", "1")
		http.Error(w, text, http.StatusServiceUnavailable)
		return
	}
	addr, ok := s.admitHTTP(w, r)
	if !ok {
		return
	}
	attached := false
	defer func() {
		if !attached {
			s.hub.limits.done(addr)
		}
	}()
	if s.cfg.Authenticator == nil {
		log.Error("signaling: rejecting connection", "err", ErrNoAuthenticator)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	user, expires, err := s.authenticate(r)
	if err == nil {
		err = ValidateUser(user)
	}
	if err != nil {
		s.hub.mu.Lock()
		s.hub.stats.Unauthorized++
		s.hub.mu.Unlock()
		log.Info("signaling: unauthorized", "remote", addr, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="dialtone"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	hj := &hijacker{ResponseWriter: w}
	ws, err := s.ws.up.Upgrade(hj, r, nil)
	if err != nil {
		log.Info("signaling: upgrade failed", "remote", addr, "err", err)
		return // Upgrade already answered
	}
	netConn := hj.conn.Conn
	c := s.hub.newConn(user, func() { _ = netConn.Close() })
	c.expires = expires
	wr := newWSWriter(netConn, s.cfg.WriteTimeout, &s.hub.bufs)
	hj.conn.wr = wr // before gorilla reads a frame: from now on its writes go through wr
	if wr.raw != nil {
		c.direct = wr
	}
	if err := s.hub.attach(c); err != nil {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, signaling.CodeShutdown),
			time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	// Serve on fresh goroutines and return: the HTTP server's goroutine,
	// with its grown stack and request buffers, is not kept per connection.
	c.addr, attached = addr, true // counted until the conn is released
	go s.wsServe(ws, wr, c)
}

// wsServe runs an attached connection until it ends, then releases it.
func (s *Server) wsServe(ws *websocket.Conn, wr *wsWriter, c *conn) {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.wsWrite(wr, c)
	}()
	s.wsRead(ws, wr, c)
	s.hub.detach(c)
	<-writerDone
	_ = ws.Close()
	s.cfg.Logger.Debug("signaling: connection closed", "user", c.user, "conn", c.id)
	s.hub.release(c)
}

// wsRead reads frames until the socket fails, enforcing the size limits:
// over MaxMessageSize the message is rejected and the connection stays;
// over 8× the socket is closed by gorilla (close 1009). Each frame is read
// into a pooled buffer that the hub takes over. Every frame goes out
// through wr: pongs, the answer to a close, and the close frames gorilla
// sends by itself (1009 over the limit, 1002 on a protocol error), which
// reach wr through gorillaConn.
func (s *Server) wsRead(ws *websocket.Conn, wr *wsWriter, c *conn) {
	max := s.cfg.MaxMessageSize
	ws.SetReadLimit(int64(max) * 8)
	// A message must be whole within MessageTimeout of its first frame:
	// pongs keep an idle connection alive, not a message that never ends.
	var msgEnd time.Time
	extend := func() {
		d := time.Now().Add(s.cfg.ReadTimeout)
		if !msgEnd.IsZero() && msgEnd.Before(d) {
			d = msgEnd
		}
		_ = ws.SetReadDeadline(d)
	}
	extend()
	ws.SetPongHandler(func(string) error { extend(); return nil })
	ws.SetPingHandler(func(data string) error {
		_ = wr.control(opPong, []byte(data))
		return nil
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		var reply []byte
		if code != websocket.CloseNoStatusReceived {
			reply = websocket.FormatCloseMessage(code, "")
		}
		wr.closeNext(appendWSControl(nil, opClose, reply))
		return nil
	})
	for {
		if c.isDone() {
			if code, _ := c.endState(); code == signaling.CodeAbusive {
				// Stop reading what an abusive client keeps sending; the
				// writer still sends it the reason and the close.
				return
			}
		}
		msgEnd = time.Time{}
		extend()
		typ, r, err := ws.NextReader()
		if err != nil {
			return
		}
		msgEnd = time.Now().Add(s.cfg.MessageTimeout)
		extend()
		buf := s.hub.bufs.get()
		*buf, err = readAtMost(r, *buf, max+1)
		if err != nil {
			return
		}
		if len(*buf) > max {
			s.hub.bufs.put(buf)
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
			c.seq++ // numbered like every frame, for rate-limited answers
			s.hub.reject(c, signaling.Message{}, signaling.CodeTooLarge, "message over the size limit")
			continue
		}
		if typ != websocket.TextMessage {
			s.hub.bufs.put(buf)
			c.seq++
			s.hub.reject(c, signaling.Message{}, signaling.CodeMalformed, "binary frames are not accepted")
			continue
		}
		s.hub.handleFrame(c, *buf, buf)
	}
}

// readAtMost appends r's content to b until r ends or b holds limit bytes.
func readAtMost(r io.Reader, b []byte, limit int) ([]byte, error) {
	for len(b) < limit {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):min(cap(b), limit)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// Most frames a writer puts in one write: queued messages go out together.
const maxBatch = 64 << 10

// wsWrite drains the conn's queue to the socket and pings. When the core
// ends the conn it writes the final word and a close frame and leaves the
// reader a second to receive the peer's close (closing at once could reset
// the connection before the peer read the reason). On a write failure the
// socket is closed, which stops wsRead.
func (s *Server) wsWrite(wr *wsWriter, c *conn) {
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	var taken []*outMsg
	// write sends o and whatever else is queued by now, in one write.
	write := func(o *outMsg) error {
		// A pooled buffer: an idle connection keeps none.
		buf := s.hub.bufs.get()
		defer s.hub.bufs.put(buf)
		batch := *buf
		defer func() { *buf = batch }()
		taken = taken[:0]
		for o != nil {
			var err error
			if batch, err = appendWSFrame(batch, o.msg); err != nil {
				s.cfg.Logger.Error("signaling: encode", "type", o.msg.Type, "err", err)
			}
			taken = append(taken, o)
			o = nil
			if len(batch) < maxBatch {
				select {
				case o = <-c.out:
				default:
				}
			}
		}
		wr.mu.Lock()
		err := wr.writeLocked(batch)
		for _, o := range taken {
			c.taken(o, true)
		}
		wr.mu.Unlock()
		clear(taken)
		return err
	}
	for {
		select {
		case o := <-c.out:
			if err := write(o); err != nil {
				s.hub.detach(c)
				return
			}
		case <-wr.kick:
			wr.mu.Lock()
			err := wr.writeLocked(nil)
			wr.mu.Unlock()
			if err != nil {
				s.hub.detach(c)
				return
			}
		case <-ping.C:
			if err := wr.control(opPing, nil); err != nil {
				s.hub.detach(c)
				return
			}
		case <-c.done:
			code, final := c.endState()
			if code == "" {
				wr.finish() // the reader is gone: at most a close it asked for
				return
			}
			if code != signaling.CodeSlowConsumer {
				// Messages queued before the end still go out, then the reason.
				for drained := false; !drained; {
					select {
					case o := <-c.out:
						if write(o) != nil {
							return
						}
					default:
						drained = true
					}
				}
			}
			if final != nil {
				c.queued.Add(1) // as if queued: write counts it out
			}
			if final != nil && write(&outMsg{msg: *final}) != nil {
				return
			}
			_ = wr.control(opClose, websocket.FormatCloseMessage(closeCode(code), code))
			wr.stop()
			// Give the peer a moment to answer the close, then cut.
			_ = wr.nc.SetReadDeadline(time.Now().Add(time.Second))
			return
		}
	}
}

// wsWriter writes a WebSocket connection's frames to its socket: it is the
// only writer of the socket once the handshake is done, so frames never
// interleave. Whoever writes holds mu: the conn's writer goroutine (queued
// messages, pings, the close), its reader (pongs), or a router between
// claim and write (one message, without waiting: directWriter). A close
// the reader side sends (the answer to the peer's close, gorilla's own on
// a bad frame) does not wait for mu: closeNext leaves it to the writer
// goroutine, to go right after the frame in flight.
type wsWriter struct {
	nc      net.Conn
	raw     *rawWriter // nil: no writes without waiting (TLS, other systems)
	timeout time.Duration
	bufs    *bufPool
	kick    chan struct{} // asks the writer goroutine to finish rest

	mu      sync.Mutex
	rest    *[]byte // a frame the socket did not take at once: (*rest)[off:] is unsent
	off     int
	stopped bool  // a close frame went out, or the writer is gone: no more frames
	err     error // the write that failed; no more frames

	closing atomic.Pointer[[]byte] // a close frame to write next, instead of anything else
}

func newWSWriter(nc net.Conn, timeout time.Duration, bufs *bufPool) *wsWriter {
	w := &wsWriter{nc: nc, timeout: timeout, bufs: bufs, kick: make(chan struct{}, 1)}
	if sc, ok := nc.(syscall.Conn); ok && canTryWrite {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = newRawWriter(raw)
		}
	}
	return w
}

// claim implements directWriter.
func (w *wsWriter) claim() bool {
	if !w.mu.TryLock() {
		return false
	}
	if w.rest != nil || w.stopped || w.err != nil || w.closing.Load() != nil {
		w.mu.Unlock()
		return false
	}
	return true
}

// write implements directWriter: it writes what the socket takes now and
// leaves the rest of the frame to the writer goroutine.
func (w *wsWriter) write(m signaling.Message) {
	defer w.mu.Unlock()
	buf := w.bufs.get()
	b, err := appendWSFrame(*buf, m)
	*buf = b
	if err != nil {
		w.bufs.put(buf)
		return
	}
	n, err := w.raw.tryWrite(b)
	if err != nil {
		w.bufs.put(buf)
		w.fail(err)
		return
	}
	if n == len(b) {
		w.bufs.put(buf)
		return
	}
	w.rest, w.off = buf, n
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// writeLocked writes b (whole frames) after any rest, waiting at most the
// write timeout. When a close is pending (closeNext) it is written instead
// of b, and the writer stops.
func (w *wsWriter) writeLocked(b []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.stopped {
		return net.ErrClosed
	}
	closing := w.closing.Load()
	if closing != nil {
		b = *closing
		w.stopped = true // after this close, whatever happens
	}
	if w.rest == nil && len(b) == 0 {
		return nil
	}
	_ = w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
	if w.rest != nil {
		_, err := w.nc.Write((*w.rest)[w.off:])
		w.bufs.put(w.rest)
		w.rest = nil
		if err != nil {
			w.fail(err)
			return err
		}
	}
	if len(b) > 0 {
		if _, err := w.nc.Write(b); err != nil {
			w.fail(err)
			return err
		}
	}
	// No deadline between writes: a write that must not wait (tryWrite)
	// would fail on a past one.
	_ = w.nc.SetWriteDeadline(time.Time{})
	if closing != nil {
		return net.ErrClosed // b did not go out: the close did, and it is the last frame
	}
	return nil
}

// control writes a control frame (after anything pending). A close frame
// is the last frame written.
func (w *wsWriter) control(op byte, payload []byte) error {
	var b [maxFrameHeader + 125]byte
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.writeLocked(appendWSControl(b[:0], op, payload))
	if op == opClose {
		w.stopped = true
	}
	return err
}

// stop ends writing: nothing more is written, by anyone.
func (w *wsWriter) stop() {
	w.mu.Lock()
	w.stopLocked()
	w.mu.Unlock()
}

func (w *wsWriter) stopLocked() {
	w.stopped = true
	w.bufs.put(w.rest)
	w.rest = nil
}

// finish ends writing once the reader is gone: a close it asked for
// (closeNext) goes out after the frame in flight, nothing else does.
func (w *wsWriter) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing.Load() != nil {
		_ = w.writeLocked(nil)
	}
	w.stopLocked()
}

// closeNext has the writer goroutine write the close frame f right after
// the frame in flight, and nothing after it. It does not wait for mu: the
// writer may be blocked on a client that does not read. The first close
// asked for wins.
func (w *wsWriter) closeNext(f []byte) {
	f = append([]byte(nil), f...)
	if w.closing.CompareAndSwap(nil, &f) {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// hijacker hands gorilla's Upgrade a gorillaConn instead of the hijacked
// connection.
type hijacker struct {
	http.ResponseWriter
	conn *gorillaConn
}

// Hijack implements http.Hijacker.
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("signaling: response does not implement http.Hijacker")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &gorillaConn{Conn: nc}
	return h.conn, brw, nil
}

// gorillaConn is the connection gorilla's Conn sees. It writes the
// handshake itself; after that (wr set) gorilla writes only the close
// frames it sends on its own while reading, and they go through wr, after
// the frame wr may be in the middle of. Write deadlines are wr's.
type gorillaConn struct {
	net.Conn
	wr *wsWriter // set after the handshake, before gorilla reads a frame
}

// Write implements net.Conn.
func (c *gorillaConn) Write(b []byte) (int, error) {
	if c.wr == nil {
		return c.Conn.Write(b)
	}
	if len(b) > 0 && b[0]&0x0f == opClose {
		c.wr.closeNext(b)
		return len(b), nil
	}
	c.wr.mu.Lock()
	defer c.wr.mu.Unlock()
	if err := c.wr.writeLocked(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// SetDeadline implements net.Conn.
func (c *gorillaConn) SetDeadline(t time.Time) error {
	if c.wr == nil {
		return c.Conn.SetDeadline(t)
	}
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline implements net.Conn.
func (c *gorillaConn) SetWriteDeadline(t time.Time) error {
	if c.wr == nil {
		return c.Conn.SetWriteDeadline(t)
	}
	return nil
}

// fail records a failed write and closes the socket, which ends the reader
// and, through it, the conn.
func (w *wsWriter) fail(err error) {
	w.err = err
	_ = w.nc.Close()
}
