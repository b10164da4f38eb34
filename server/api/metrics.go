package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dfms/dfms/server/ops"
)

// metrics are the API's Prometheus metrics, in a registry of their own so
// that several servers can run in one test process.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	bytesIn   prometheus.Counter
	bytesOut  prometheus.Counter
	newChunks prometheus.Counter
	dedup     prometheus.Counter
}

// newMetrics makes the API's metrics, with more collectors (the workers').
func newMetrics(more ...prometheus.Collector) *metrics {
	m := &metrics{
		reg: ops.NewRegistry(more...),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dfms_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dfms_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"method", "route"}),
		bytesIn:   prometheus.NewCounter(prometheus.CounterOpts{Name: "dfms_upload_bytes_total", Help: "File bytes received by uploads."}),
		bytesOut:  prometheus.NewCounter(prometheus.CounterOpts{Name: "dfms_download_bytes_total", Help: "File bytes sent by downloads."}),
		newChunks: prometheus.NewCounter(prometheus.CounterOpts{Name: "dfms_chunks_stored_total", Help: "Chunks stored by uploads (not deduplicated)."}),
		dedup:     prometheus.NewCounter(prometheus.CounterOpts{Name: "dfms_chunks_deduplicated_total", Help: "Chunk occurrences of uploads that were already stored."}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.newChunks, m.dedup)
	return m
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

func (m *metrics) middleware(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(c.Writer.Status())).Inc()
	m.duration.WithLabelValues(c.Request.Method, route).Observe(time.Since(start).Seconds())
}
