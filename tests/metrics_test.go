package tests

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/mogilefs-go/mogilefs-go/core/client"
	"github.com/mogilefs-go/mogilefs-go/core/clustertest"
	"github.com/mogilefs-go/mogilefs-go/core/opsserver"
	"github.com/prometheus/client_golang/prometheus"
)

// scrape fetches /metrics from a handler over real HTTP.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(opsserver.Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricValue returns the value of the first sample matching pattern.
func metricValue(t *testing.T, text, pattern string) float64 {
	t.Helper()
	m := regexp.MustCompile("(?m)^" + pattern + ` ([0-9.e+-]+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no series matching %s in:\n%.2000s", pattern, text)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func TestMetricsEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	c := clustertest.Start(t, clustertest.Options{Domain: "test"})
	treg := c.Tracker.Registry()
	nreg := c.Nodes[0].Server.Registry()
	nbefore := scrape(t, nreg)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		c.Client.Upload(ctx, "test", "m"+strconv.Itoa(i), "two", bytes.NewReader([]byte("metrics")), 7, client.UploadOptions{})
	}
	c.Do("get_paths", map[string]string{"domain": "test", "key": "nope"})
	waitFor(t, 20e9, "replication", func() bool {
		return metricValue(t, scrape(t, treg), "mogilefs_tracker_replicated_total") >= 5
	})
	after := scrape(t, treg)
	if v := metricValue(t, after, `mogilefs_tracker_requests_total\{code="ok",command="create_close"\}`); v < 5 {
		t.Errorf("create_close ok count = %v", v)
	}
	if v := metricValue(t, after, `mogilefs_tracker_requests_total\{code="unknown_key",command="get_paths"\}`); v != 1 {
		t.Errorf("get_paths unknown_key count = %v", v)
	}
	metricValue(t, after, `mogilefs_tracker_request_seconds_count\{command="create_open"\}`)
	metricValue(t, after, `mogilefs_queue_length\{queue="replicate"\}`)
	metricValue(t, after, `mogilefs_device_free_bytes\{devid="1",host="host1",status="alive"\}`)
	if v := metricValue(t, after, `mogilefs_device_writeable\{devid="2",host="host2",status="alive"\}`); v != 1 {
		t.Errorf("device 2 writeable = %v", v)
	}
	nafter := scrape(t, nreg)
	if metricValue(t, nafter, "mogstored_puts_total") <= metricValue(t, nbefore, "mogstored_puts_total") {
		t.Error("mogstored_puts_total did not move")
	}
	if metricValue(t, nafter, "mogstored_bytes_in_total") == 0 {
		t.Error("mogstored_bytes_in_total is 0")
	}
	metricValue(t, nafter, `mogstored_device_free_bytes\{device="1"\}`)
	metricValue(t, nafter, "go_goroutines")
}
