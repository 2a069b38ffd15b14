// Package chromium holds what the tests and programs that drive a headless
// Chromium share: where Debian installs it and the flags a WebRTC page
// needs there.
package chromium

import "github.com/chromedp/chromedp"

// DefaultPath is Debian's Chromium binary (/usr/bin/chromium is a wrapper
// script).
const DefaultPath = "/usr/lib/chromium/chromium"

// Options returns chromedp allocator options for a headless Chromium at
// path, with its own profile directory and TMPDIR (Chromium leaves folders
// in the temporary directory), fake media devices granted without a
// prompt, autoplay allowed, candidates gathered on loopback and not hidden
// behind mDNS, and the background services that reach for the network
// turned off. Callers may append their own.
func Options(path, profile, tmp string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.UserDataDir(profile),
		chromedp.Env("TMPDIR="+tmp),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// Replaces chromedp's default value, so repeat it.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-gpu", true),
	)
}
