package syslog

import (
	"github.com/VictoriaMetrics/metrics"
)

// Reasons of segwatch_events_dropped_total (SPEC §6) this package counts.
const (
	ReasonQueueFull          = "queue_full"
	ReasonRateLimited        = "rate_limited"
	ReasonBadFrame           = "bad_frame"
	ReasonTooManyConnections = "too_many_connections"
	// ReasonShutdown counts events read from a connection but not queued
	// because the queue did not take them within the shutdown grace time.
	ReasonShutdown = "shutdown"
	// ReasonPanic counts events lost to a recovered panic (a bug).
	ReasonPanic = "panic"
)

// Transports, the transport label of segwatch_syslog_messages_received_total.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	TransportTLS = "tls"
)

type receiverMetrics struct {
	receivedUDP, receivedTCP, receivedTLS *metrics.Counter
	parseErrors                           *metrics.Counter
	droppedQueueFull                      *metrics.Counter
	droppedRateLimited                    *metrics.Counter
	droppedBadFrame                       *metrics.Counter
	droppedTooMany                        *metrics.Counter
	droppedShutdown                       *metrics.Counter
	droppedPanic                          *metrics.Counter
	truncated                             *metrics.Counter
	tlsHandshakeErrors                    *metrics.Counter
	panics                                *metrics.Counter
	connections                           *metrics.Gauge
}

func newReceiverMetrics(s *metrics.Set) *receiverMetrics {
	c := s.GetOrCreateCounter
	dropped := func(reason string) *metrics.Counter {
		return c(`segwatch_events_dropped_total{reason="` + reason + `"}`)
	}
	return &receiverMetrics{
		receivedUDP:        c(`segwatch_syslog_messages_received_total{transport="udp"}`),
		receivedTCP:        c(`segwatch_syslog_messages_received_total{transport="tcp"}`),
		receivedTLS:        c(`segwatch_syslog_messages_received_total{transport="tls"}`),
		parseErrors:        c(`segwatch_syslog_parse_errors_total`),
		droppedQueueFull:   dropped(ReasonQueueFull),
		droppedRateLimited: dropped(ReasonRateLimited),
		droppedBadFrame:    dropped(ReasonBadFrame),
		droppedTooMany:     dropped(ReasonTooManyConnections),
		droppedShutdown:    dropped(ReasonShutdown),
		droppedPanic:       dropped(ReasonPanic),
		truncated:          c(`segwatch_syslog_messages_truncated_total`),
		tlsHandshakeErrors: c(`segwatch_syslog_tls_handshake_errors_total`),
		panics:             c(`segwatch_syslog_handler_panics_total`),
		connections:        s.GetOrCreateGauge(`segwatch_syslog_connections`, nil),
	}
}

func (m *receiverMetrics) received(transport string) *metrics.Counter {
	switch transport {
	case TransportUDP:
		return m.receivedUDP
	case TransportTLS:
		return m.receivedTLS
	}
	return m.receivedTCP
}
