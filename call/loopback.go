package call

import (
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Loopback returns a SettingEngine that keeps a phone's media on
// 127.0.0.1: UDP over IPv4 only, the loopback interface only, loopback
// candidates included (pion leaves them out by default), no mDNS. It is for
// programs whose both ends run on one host (demos, bots beside their
// server, tests); set it as Config.SettingEngine.
func Loopback() *webrtc.SettingEngine {
	se := &webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se
}
