package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dialtone-dev/dialtone/signaling"
)

// Push results as labelled in dialtone_signaling_push_total.
const (
	pushResultOK     = "ok"
	pushResultFailed = "failed"
)

// metrics holds the server's Prometheus collectors, registered on a
// registry of its own so that several Servers in one process (tests, a
// cluster in one binary) never collide on the global registry.
type metrics struct {
	reg     *prometheus.Registry
	routed  *prometheus.CounterVec
	errors  *prometheus.CounterVec
	push    *prometheus.CounterVec
	handler http.Handler

	// Counters for the known types, resolved once: the routing hot path
	// must not hash label values for every message.
	routedByType map[signaling.Type]prometheus.Counter
}

func newMetrics(h *hub) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dialtone", Subsystem: "signaling", Name: "messages_routed_total",
			Help: "Messages delivered to a recipient's connection on this node, by type.",
		}, []string{"type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dialtone", Subsystem: "signaling", Name: "errors_total",
			Help: "Errors reported to clients (rejected messages, connections ended by the server), by code.",
		}, []string{"code"}),
		push: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dialtone", Subsystem: "signaling", Name: "push_total",
			Help: "Push hook calls, by result (ok, failed).",
		}, []string{"result"}),
		routedByType: make(map[signaling.Type]prometheus.Counter),
	}
	for _, t := range signaling.Types() {
		m.routedByType[t] = m.routed.WithLabelValues(string(t))
	}
	// Make the push series visible at 0 before the first push.
	m.push.WithLabelValues(pushResultOK)
	m.push.WithLabelValues(pushResultFailed)

	conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "dialtone", Subsystem: "signaling", Name: "connections",
		Help: "Users connected to this node.",
	}, func() float64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		return float64(len(h.users))
	})
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "dialtone", Subsystem: "signaling", Name: "pending_invites",
		Help: "Calls waiting on this node for an offline (pushed) user to connect.",
	}, func() float64 {
		h.mu.Lock()
		defer h.mu.Unlock()
		n := 0
		for _, calls := range h.pending {
			n += len(calls)
		}
		return float64(n)
	})
	m.reg.MustRegister(m.routed, m.errors, m.push, conns, pending,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	return m
}

func (m *metrics) routedInc(t signaling.Type) {
	if c, ok := m.routedByType[t]; ok {
		c.Inc()
		return
	}
	m.routed.WithLabelValues(string(t)).Inc()
}

func (m *metrics) errorInc(code string) { m.errors.WithLabelValues(code).Inc() }

func (m *metrics) pushInc(ok bool) {
	if ok {
		m.push.WithLabelValues(pushResultOK).Inc()
	} else {
		m.push.WithLabelValues(pushResultFailed).Inc()
	}
}

// Metrics returns an http.Handler serving the server's Prometheus metrics
// in the text exposition format (mount it on e.g. /metrics):
//
//	dialtone_signaling_connections                 gauge: users connected to this node
//	dialtone_signaling_messages_routed_total{type} counter: messages delivered to a recipient
//	dialtone_signaling_errors_total{code}          counter: `error` codes sent (rejections, cut-offs)
//	dialtone_signaling_push_total{result}          counter: push hook calls, result ok|failed
//	dialtone_signaling_pending_invites             gauge: calls kept for a pushed user
//
// plus the Go runtime and process collectors. The collectors live on the
// Server's own registry, never the global one.
func (s *Server) Metrics() http.Handler { return s.hub.metrics.handler }

// Registry returns the server's Prometheus registry, to add collectors of
// your own or to gather it into a larger registry.
func (s *Server) Registry() *prometheus.Registry { return s.hub.metrics.reg }
