// Package firefox runs a headless Firefox for tests and drives it over
// Marionette, Firefox's own remote protocol (no geckodriver): a fresh
// profile whose user.js fakes the microphone, grants it without a prompt,
// allows autoplay and gathers ICE candidates on loopback; a small client
// for the WebDriver commands a page test needs (navigate, run a script,
// find and click an element, type).
package firefox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultPath is Debian's firefox-esr binary.
const DefaultPath = "/usr/lib/firefox-esr/firefox-esr"

// Prefs returns the preferences a WebRTC page test needs, written to the
// profile's user.js by Start:
//   - a fake microphone (a steady 1 kHz tone) and camera, granted without
//     a prompt;
//   - autoplay allowed, so <audio> elements play remote streams;
//   - ICE candidates on loopback, shown as addresses rather than mDNS names;
//   - Marionette on a port of its choosing (0), which it writes to the
//     profile's MarionetteActivePort file;
//   - no default-browser check, first-run pages, update checks, telemetry
//     or experiments. Marionette itself applies its recommended
//     preferences on top (remote.prefs.recommended), which turn off most
//     other background traffic.
func Prefs() map[string]any {
	return map[string]any{
		"media.navigator.streams.fake":                      true,
		"media.navigator.permission.disabled":               true,
		"permissions.default.microphone":                    1,
		"permissions.default.camera":                        1,
		"media.autoplay.default":                            0,
		"media.peerconnection.ice.loopback":                 true,
		"media.peerconnection.ice.obfuscate_host_addresses": false,
		"marionette.port":                                   0,
		"browser.shell.checkDefaultBrowser":                 false,
		"browser.startup.page":                              0,
		"browser.aboutwelcome.enabled":                      false,
		"app.update.disabledForTesting":                     true,
		"app.normandy.enabled":                              false,
		"messaging-system.rsexperimentloader.enabled":       false,
		"datareporting.policy.dataSubmissionEnabled":        false,
		"toolkit.telemetry.reportingpolicy.firstRun":        false,
		"network.proxy.type":                                0,
	}
}

// Config says how to start Firefox. Profile is required; the rest have
// defaults.
type Config struct {
	// Path is the Firefox binary (default DefaultPath).
	Path string
	// Profile is an empty directory that becomes the browser's profile.
	Profile string
	// Prefs are added to Prefs() (and replace those of the same name).
	Prefs map[string]any
	// Env is added to the process environment (e.g. HOME=…, TMPDIR=…).
	Env []string
	// Output receives the browser's stdout and stderr (default: dropped).
	Output io.Writer
	// StartTimeout bounds the start, until a session is open (default 60 s).
	StartTimeout time.Duration
	// ScriptTimeout bounds each script run in the page (default 30 s).
	ScriptTimeout time.Duration
}

// Browser is a running Firefox with an open Marionette session.
type Browser struct {
	cmd    *exec.Cmd
	conn   *Conn
	exited chan struct{} // closed when cmd.Wait returned
	err    error         // cmd.Wait's error, set before exited closes
}

// Start writes the profile's user.js, starts Firefox headless with
// Marionette on, connects and opens a session. The browser runs until
// Close, not until ctx ends; ctx bounds the start.
func Start(ctx context.Context, cfg Config) (*Browser, error) {
	if cfg.Profile == "" {
		return nil, errors.New("firefox: Config.Profile is required")
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.ScriptTimeout <= 0 {
		cfg.ScriptTimeout = 30 * time.Second
	}
	prefs := Prefs()
	for k, v := range cfg.Prefs {
		prefs[k] = v
	}
	if err := writeUserJS(filepath.Join(cfg.Profile, "user.js"), prefs); err != nil {
		return nil, err
	}
	portFile := filepath.Join(cfg.Profile, "MarionetteActivePort")
	_ = os.Remove(portFile)

	cmd := exec.Command(cfg.Path, "--headless", "--marionette", "--no-remote", "--new-instance",
		"--profile", cfg.Profile, "about:blank")
	cmd.Env = append(append(os.Environ(), "MOZ_HEADLESS=1"), cfg.Env...)
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that Close can end the content processes
	// too if the parent leaves them behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("firefox: %w", err)
	}
	b := &Browser{cmd: cmd, exited: make(chan struct{})}
	go func() {
		b.err = cmd.Wait()
		close(b.exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := b.open(ctx, portFile, cfg.ScriptTimeout); err != nil {
		b.kill()
		return nil, err
	}
	return b, nil
}

// open waits for Marionette's port file, connects and opens a session.
func (b *Browser) open(ctx context.Context, portFile string, scriptTimeout time.Duration) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var port int
	for {
		if s, err := os.ReadFile(portFile); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(s))); err == nil && p > 0 {
				port = p
				break
			}
		}
		select {
		case <-tick.C:
		case <-b.exited:
			return fmt.Errorf("firefox: exited before Marionette listened: %v", b.err)
		case <-ctx.Done():
			return fmt.Errorf("firefox: Marionette did not listen: %w", ctx.Err())
		}
	}
	conn, err := Dial(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	b.conn = conn
	if err := conn.Call(ctx, "WebDriver:NewSession", map[string]any{}, nil); err != nil {
		return err
	}
	return conn.Call(ctx, "WebDriver:SetTimeouts", map[string]any{
		"script": scriptTimeout.Milliseconds(), "pageLoad": 30000, "implicit": 0,
	}, nil)
}

// Close ends the session, asks Firefox to quit and waits up to 10 s for it
// to exit before killing it. It returns nil once the browser is gone.
func (b *Browser) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Quit ends the session and the process. When the connection cannot
	// carry it (an earlier call broke it), SIGTERM makes Firefox quit too.
	qerr := b.conn.Call(ctx, "Marionette:Quit", map[string]any{"flags": []string{"eForceQuit"}}, nil)
	_ = b.conn.Close()
	if qerr != nil {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		b.kill()
		return fmt.Errorf("firefox: did not quit within 10 s; killed (quit: %v)", qerr)
	}
	// Content processes normally end with the parent.
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	return nil
}

// kill kills the browser's process group and waits for the parent.
func (b *Browser) kill() {
	if b.conn != nil {
		_ = b.conn.Close()
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	<-b.exited
}

// Conn is the browser's Marionette connection, for commands the methods
// below do not cover.
func (b *Browser) Conn() *Conn { return b.conn }

// Navigate loads url in the current tab and waits for it to load.
func (b *Browser) Navigate(ctx context.Context, url string) error {
	return b.conn.Call(ctx, "WebDriver:Navigate", map[string]any{"url": url}, nil)
}

// Eval evaluates a JavaScript expression in the page and decodes its
// value (JSON) into result, which may be nil.
func (b *Browser) Eval(ctx context.Context, expr string, result any) error {
	return b.Execute(ctx, "return ("+expr+");", nil, result)
}

// Execute runs script, a function body, with args (arguments[i]) in the
// page, and decodes what it returns into result, which may be nil.
func (b *Browser) Execute(ctx context.Context, script string, args []any, result any) error {
	return b.execute(ctx, "WebDriver:ExecuteScript", script, args, result)
}

// ExecuteAsync runs script, a function body, in the page; it finishes by
// calling its last argument with the value, which is decoded into result
// (may be nil). The browser's script timeout bounds it.
func (b *Browser) ExecuteAsync(ctx context.Context, script string, args []any, result any) error {
	return b.execute(ctx, "WebDriver:ExecuteAsyncScript", script, args, result)
}

func (b *Browser) execute(ctx context.Context, cmd, script string, args []any, result any) error {
	if args == nil {
		args = []any{}
	}
	var v struct {
		Value json.RawMessage `json:"value"`
	}
	if err := b.conn.Call(ctx, cmd, map[string]any{"script": script, "args": args}, &v); err != nil {
		return err
	}
	if result == nil {
		return nil
	}
	return json.Unmarshal(v.Value, result)
}

// ErrPollTimeout is returned by Poll when the expression stayed falsy.
var ErrPollTimeout = errors.New("firefox: poll timed out")

// Poll evaluates expr in the page every interval until it is truthy, for
// at most timeout, and decodes that value into result (may be nil). The
// polling runs in the page, one round trip in all.
func (b *Browser) Poll(ctx context.Context, expr string, interval, timeout time.Duration, result any) error {
	script := `const done = arguments[arguments.length - 1];
const until = performance.now() + arguments[1];
const check = () => {
  let v;
  try { v = (0, eval)(arguments[0]); } catch (e) { done({err: String(e)}); return; }
  if (v) { done({ok: true, value: v}); return; }
  if (performance.now() > until) { done({ok: false}); return; }
  setTimeout(check, arguments[2]);
};
check();`
	var r struct {
		OK    bool            `json:"ok"`
		Err   string          `json:"err"`
		Value json.RawMessage `json:"value"`
	}
	if err := b.ExecuteAsync(ctx, script, []any{expr, timeout.Milliseconds(), interval.Milliseconds()}, &r); err != nil {
		return err
	}
	switch {
	case r.Err != "":
		return fmt.Errorf("firefox: poll %q: %s", expr, r.Err)
	case !r.OK:
		return fmt.Errorf("%w after %v: %s", ErrPollTimeout, timeout, expr)
	case result == nil:
		return nil
	}
	return json.Unmarshal(r.Value, result)
}

// Element is a reference to an element of the page.
type Element string

// webElement is WebDriver's key for an element reference.
const webElement = "element-6066-11e4-a52e-4f735466cecf"

// Find returns the first element matching the CSS selector.
func (b *Browser) Find(ctx context.Context, selector string) (Element, error) {
	var r struct {
		Value map[string]string `json:"value"`
	}
	if err := b.conn.Call(ctx, "WebDriver:FindElement", map[string]any{"using": "css selector", "value": selector}, &r); err != nil {
		return "", err
	}
	id := r.Value[webElement]
	if id == "" {
		return "", fmt.Errorf("firefox: find %q: no element reference in the reply", selector)
	}
	return Element(id), nil
}

// Click clicks the element matching selector as a user would (scrolled
// into view, real mouse events, so the page gets a user activation).
func (b *Browser) Click(ctx context.Context, selector string) error {
	el, err := b.Find(ctx, selector)
	if err != nil {
		return err
	}
	return b.conn.Call(ctx, "WebDriver:ElementClick", map[string]any{"id": string(el)}, nil)
}

// SendKeys types text into the element matching selector.
func (b *Browser) SendKeys(ctx context.Context, selector, text string) error {
	el, err := b.Find(ctx, selector)
	if err != nil {
		return err
	}
	return b.conn.Call(ctx, "WebDriver:ElementSendKeys", map[string]any{"id": string(el), "text": text}, nil)
}

// writeUserJS writes prefs as user_pref lines, sorted by name.
func writeUserJS(path string, prefs map[string]any) error {
	names := make([]string, 0, len(prefs))
	for k := range prefs {
		names = append(names, k)
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, k := range names {
		v, err := json.Marshal(prefs[k])
		if err != nil {
			return fmt.Errorf("firefox: pref %s: %w", k, err)
		}
		fmt.Fprintf(&sb, "user_pref(%q, %s);\n", k, v)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("firefox: %w", err)
	}
	return nil
}
