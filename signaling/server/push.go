package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
)

// Pusher wakes a user who is not connected (a mobile push, a webhook, ...),
// so that it connects and receives the pending invite. Push is called from
// its own goroutine with a context bounded by Config.PushTimeout; it must
// return when the context is done.
type Pusher interface {
	Push(ctx context.Context, p Push) error
}

// PusherFunc adapts a function to Pusher.
type PusherFunc func(ctx context.Context, p Push) error

// Push calls f(ctx, p).
func (f PusherFunc) Push(ctx context.Context, p Push) error { return f(ctx, p) }

// Push describes one wake-up: User is called by From in call Call.
type Push struct {
	User   string           `json:"user"`
	From   string           `json:"from"`
	Call   string           `json:"call"`
	Invite signaling.Invite `json:"invite"`
	// Expires is when the pending invite will be dropped.
	Expires time.Time `json:"expires"`
}

// Webhook is a Pusher that POSTs the Push as JSON to URL. Any 2xx answer is
// success.
type Webhook struct {
	URL string
	// Client makes the request. Default: a client with Timeout.
	Client *http.Client
	// Timeout bounds the request (in addition to the context). Default 5 s.
	Timeout time.Duration
	// Header is added to every request (e.g. an Authorization for the hook).
	Header http.Header
}

// Push implements Pusher.
func (w *Webhook) Push(ctx context.Context, p Push) error {
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("server: push: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("server: push: %w", err)
	}
	for k, vs := range w.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("server: push: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%w: %s", ErrPushStatus, resp.Status)
	}
	return nil
}
