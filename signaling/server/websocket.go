package server

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
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
		// Idle connections hold no write buffer: one is taken per message.
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
	case signaling.CodeShutdown:
		return websocket.CloseGoingAway
	case signaling.CodeAbusive, codeSlowConsumer:
		return websocket.ClosePolicyViolation
	}
	return websocket.CloseNormalClosure
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	log := s.cfg.Logger
	s.hub.mu.Lock()
	closing := s.hub.closing
	s.hub.mu.Unlock()
	if closing {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	if s.cfg.Authenticator == nil {
		log.Error("signaling: rejecting connection", "err", ErrNoAuthenticator)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	user, err := s.cfg.Authenticator.Authenticate(r)
	if err == nil {
		err = ValidateUser(user)
	}
	if err != nil {
		s.hub.mu.Lock()
		s.hub.stats.Unauthorized++
		s.hub.mu.Unlock()
		log.Info("signaling: unauthorized", "remote", r.RemoteAddr, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="dialtone"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	ws, err := s.ws.up.Upgrade(w, r, nil)
	if err != nil {
		log.Info("signaling: upgrade failed", "remote", r.RemoteAddr, "err", err)
		return // Upgrade already answered
	}
	netConn := ws.NetConn()
	c := s.hub.newConn(user, func() { _ = netConn.Close() })
	if err := s.hub.attach(c); err != nil {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, signaling.CodeShutdown),
			time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	// Serve on fresh goroutines and return: the HTTP server's goroutine,
	// with its grown stack and request buffers, is not kept per connection.
	go s.wsServe(ws, c)
}

// wsServe runs an attached connection until it ends, then releases it.
func (s *Server) wsServe(ws *websocket.Conn, c *conn) {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.wsWrite(ws, c)
	}()
	s.wsRead(ws, c)
	s.hub.detach(c)
	<-writerDone
	_ = ws.Close()
	s.cfg.Logger.Debug("signaling: connection closed", "user", c.user, "conn", c.id)
	s.hub.release(c)
}

// wsRead reads frames until the socket fails, enforcing the size limits:
// over MaxMessageSize the message is rejected and the connection stays;
// over 8× the socket is closed by gorilla (close 1009).
func (s *Server) wsRead(ws *websocket.Conn, c *conn) {
	max := s.cfg.MaxMessageSize
	ws.SetReadLimit(int64(max) * 8)
	extend := func() { _ = ws.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout)) }
	extend()
	ws.SetPongHandler(func(string) error { extend(); return nil })
	buf := new(bytes.Buffer)
	for {
		typ, r, err := ws.NextReader()
		if err != nil {
			return
		}
		extend()
		buf.Reset()
		n, err := io.Copy(buf, io.LimitReader(r, int64(max)+1))
		if err != nil {
			return
		}
		if n > int64(max) {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
			s.hub.reject(c, signaling.Message{}, signaling.CodeTooLarge, "message over the size limit")
			continue
		}
		if typ != websocket.TextMessage {
			s.hub.reject(c, signaling.Message{}, signaling.CodeMalformed, "binary frames are not accepted")
			continue
		}
		s.hub.handle(c, buf.Bytes())
	}
}

// wsWrite drains the conn's queue to the socket and pings. When the core
// ends the conn it writes the final word and a close frame and leaves the
// reader a second to receive the peer's close (closing at once could reset
// the connection before the peer read the reason). On a write failure it
// closes the socket, which stops wsRead.
func (s *Server) wsWrite(ws *websocket.Conn, c *conn) {
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	var buf []byte // reused: one encoding per message, no allocation once grown
	write := func(m signaling.Message) error {
		var err error
		buf, err = appendFrame(buf[:0], m)
		if err != nil {
			return err
		}
		if cap(buf) > 64<<10 {
			defer func() { buf = nil }() // do not pin a rare huge buffer
		}
		_ = ws.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		return ws.WriteMessage(websocket.TextMessage, buf)
	}
	for {
		select {
		case m := <-c.out:
			if err := write(*m); err != nil {
				s.hub.detach(c)
				_ = ws.Close()
				return
			}
		case <-ping.C:
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.cfg.WriteTimeout)); err != nil {
				s.hub.detach(c)
				_ = ws.Close()
				return
			}
		case <-c.done:
			code, final := c.endState()
			if code == "" {
				return // the reader is gone: nothing to say
			}
			if code != codeSlowConsumer {
				// Messages queued before the end still go out, then the reason.
				for drained := false; !drained; {
					select {
					case m := <-c.out:
						if write(*m) != nil {
							_ = ws.Close()
							return
						}
					default:
						drained = true
					}
				}
			}
			if final != nil && write(*final) != nil {
				_ = ws.Close()
				return
			}
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeCode(code), code),
				time.Now().Add(s.cfg.WriteTimeout))
			// Give the peer a moment to answer the close, then cut.
			_ = ws.SetReadDeadline(time.Now().Add(time.Second))
			return
		}
	}
}
