package firefox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// maxMessage bounds one Marionette message, so that a broken peer cannot
// make the client allocate without limit.
const maxMessage = 64 << 20

// Conn is a Marionette connection: commands go out as length-prefixed JSON
// arrays `len:[0,id,"Name",{params}]` and come back as
// `len:[1,id,error,result]`. One command is in flight at a time; calls from
// several goroutines take turns. After an I/O error or a cancelled call (the
// stream may stop mid-message) every later call fails with ErrBroken.
type Conn struct {
	mu     sync.Mutex // held for a whole command, request and response
	nc     net.Conn
	r      *bufio.Reader
	id     int
	broken error
}

// ErrBroken is returned by calls on a connection that an earlier call left
// in an unknown state (an I/O error or a cancelled call).
var ErrBroken = errors.New("firefox: marionette connection broken")

// Error is an error Marionette returned for a command (a WebDriver error:
// Code such as "no such element" or "javascript error").
type Error struct {
	Command string
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("firefox: %s: %s: %s", e.Command, e.Code, e.Message)
}

// Dial connects to Marionette at addr and reads its greeting.
func Dial(ctx context.Context, addr string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("firefox: marionette: %w", err)
	}
	c := &Conn{nc: nc, r: bufio.NewReader(nc)}
	if err := c.greeting(ctx); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

// greeting reads the first message, `{"applicationType":"gecko",
// "marionetteProtocol":3}`.
func (c *Conn) greeting(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	release := c.bind(ctx)
	defer release()
	raw, err := c.read()
	if err != nil {
		return fmt.Errorf("firefox: marionette greeting: %w", err)
	}
	var hello struct {
		ApplicationType    string `json:"applicationType"`
		MarionetteProtocol int    `json:"marionetteProtocol"`
	}
	if err := json.Unmarshal(raw, &hello); err != nil {
		return fmt.Errorf("firefox: marionette greeting %.100q: %w", raw, err)
	}
	if hello.MarionetteProtocol != 3 {
		return fmt.Errorf("firefox: marionette protocol %d, want 3", hello.MarionetteProtocol)
	}
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	return c.nc.Close()
}

// Call sends command name with params (marshalled to a JSON object; nil
// sends {}) and decodes the result into result (ignored when nil). A
// command Marionette fails comes back as *Error. The call ends when ctx
// does; the connection is then broken.
func (c *Conn) Call(ctx context.Context, name string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return fmt.Errorf("%w: %w", ErrBroken, c.broken)
	}
	c.id++
	id := c.id
	msg, err := json.Marshal([]any{0, id, name, params})
	if err != nil {
		return fmt.Errorf("firefox: %s: %w", name, err)
	}
	release := c.bind(ctx)
	defer release()
	fail := func(err error) error {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		c.broken = err
		return fmt.Errorf("firefox: %s: %w", name, err)
	}
	if _, err := c.nc.Write(append([]byte(strconv.Itoa(len(msg))+":"), msg...)); err != nil {
		return fail(err)
	}
	for {
		raw, err := c.read()
		if err != nil {
			return fail(err)
		}
		var resp []json.RawMessage
		if err := json.Unmarshal(raw, &resp); err != nil || len(resp) != 4 {
			return fail(fmt.Errorf("not a response: %.100q", raw))
		}
		var kind, rid int
		if json.Unmarshal(resp[0], &kind) != nil || json.Unmarshal(resp[1], &rid) != nil {
			return fail(fmt.Errorf("not a response: %.100q", raw))
		}
		if kind != 1 || rid != id {
			continue // a response to a call that gave up, or a command from the server
		}
		if string(resp[2]) != "null" {
			e := &Error{Command: name}
			if err := json.Unmarshal(resp[2], e); err != nil {
				return fail(fmt.Errorf("bad error %.100q: %w", resp[2], err))
			}
			return e
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(resp[3], result); err != nil {
			return fmt.Errorf("firefox: %s: result %.100q: %w", name, resp[3], err)
		}
		return nil
	}
}

// bind makes the connection's reads and writes end when ctx does, until
// release is called. The caller holds c.mu. The deadline is set only once
// ctx is done, so that an I/O error it causes comes with ctx.Err().
func (c *Conn) bind(ctx context.Context) (release func()) {
	_ = c.nc.SetDeadline(time.Time{})
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = c.nc.SetDeadline(time.Unix(1, 0))
	})
	return func() {
		if !stop() {
			<-fired // so that it cannot touch the deadline of a later call
		}
	}
}

// read reads one message: decimal length, ':', that many bytes of JSON.
func (c *Conn) read() ([]byte, error) {
	n := 0
	for digits := 0; ; digits++ {
		b, err := c.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == ':' && digits > 0 {
			break
		}
		if b < '0' || b > '9' || digits >= 9 {
			return nil, fmt.Errorf("bad message length prefix at %q", b)
		}
		n = n*10 + int(b-'0')
	}
	if n > maxMessage {
		return nil, fmt.Errorf("message of %d bytes is over the limit", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
