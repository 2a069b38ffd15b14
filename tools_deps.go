//go:build tools

// Temporary: pins the modules the packages under construction import, so
// go.sum is complete while they are being written. Removed once real
// imports exist.
package dialtone

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/gen2brain/malgo"
	_ "github.com/gorilla/websocket"
	_ "github.com/hraban/opus"
	_ "github.com/pion/ice/v4"
	_ "github.com/pion/interceptor"
	_ "github.com/pion/logging"
	_ "github.com/pion/rtcp"
	_ "github.com/pion/rtp"
	_ "github.com/pion/sdp/v3"
	_ "github.com/pion/transport/v4/vnet"
	_ "github.com/pion/turn/v5"
	_ "github.com/pion/webrtc/v4"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/stretchr/testify/assert"
	_ "github.com/stretchr/testify/require"
	_ "go.uber.org/goleak"
	_ "golang.org/x/time/rate"
)
