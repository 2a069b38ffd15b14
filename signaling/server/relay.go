package server

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/dialtone-dev/dialtone/signaling"
)

// TURNCredentials returns a time-limited TURN credential for user in the TURN
// REST API format understood by coturn (use-auth-secret) and pion/turn:
// username "<unix expiry>:<user>", password base64(HMAC-SHA1(secret, username)).
func TURNCredentials(secret []byte, user string, expiry time.Time) (username, password string) {
	username = strconv.FormatInt(expiry.Unix(), 10) + ":" + user
	h := hmac.New(sha1.New, secret)
	h.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// relayConfig builds the ICE servers for user: the static ones, then the
// TURN URLs with fresh credentials.
func (s *Server) relayConfig(user string) signaling.RelayConfig {
	cfg := &s.cfg
	servers := make([]signaling.ICEServer, 0, len(cfg.ICEServers)+1)
	for _, is := range cfg.ICEServers {
		is.URLs = append([]string(nil), is.URLs...)
		servers = append(servers, is)
	}
	ttl := 0
	if len(cfg.TURNURLs) > 0 && len(cfg.TURNSecret) > 0 {
		u, p := TURNCredentials(cfg.TURNSecret, user, s.hub.now().Add(cfg.TURNTTL))
		servers = append(servers, signaling.ICEServer{
			URLs: append([]string(nil), cfg.TURNURLs...), Username: u, Credential: p,
		})
		ttl = int(cfg.TURNTTL / time.Second)
	}
	return signaling.RelayConfig{ICEServers: servers, RelayTTL: ttl}
}
