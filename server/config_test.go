package server

import (
	"strings"
	"testing"
	"time"
)

// Every trusted proxy is an IP address or a CIDR prefix; anything else is
// a configuration error, not a silently trusted (or ignored) entry.
func TestConfigTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		proxies []string
		ok      bool
	}{
		{nil, true},
		{[]string{"10.0.0.0/8", "172.18.0.0/16", "192.0.2.7", "::1", "fd00::/8"}, true},
		{[]string{"traefik"}, false},
		{[]string{"10.0.0.0/33"}, false},
		{[]string{""}, false},
		{[]string{"10.0.0.1:80"}, false},
	} {
		var c Config
		c.Defaults()
		c.TrustedProxies = tc.proxies
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("trusted_proxies %q: got %v, want ok=%v", tc.proxies, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "trusted_proxies") {
			t.Errorf("trusted_proxies %q: error %q does not name the setting", tc.proxies, err)
		}
	}
}

// A rate limit is turned off as the configuration reference says: with a
// negative value (0 is the default). Before, Validate refused negatives
// with a message that called 0 unlimited, and 0 became the default, so
// no setting turned a limit off.
func TestConfigRateLimitOff(t *testing.T) {
	var c Config
	c.RateLimit.User = -1
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("rate_limit.user -1: %v; want accepted (unlimited)", err)
	}
	if c.RateLimit.User != -1 || c.RateLimit.Global != 600000 {
		t.Fatalf("after defaults: user %d, global %d; want -1 (unlimited) and the default 600000", c.RateLimit.User, c.RateLimit.Global)
	}
}

// Configured storage nodes are checked as the admin API checks them, at
// start, with the setting named and no secret shown.
func TestConfigNodes(t *testing.T) {
	for _, tc := range []struct {
		nodes []NodeConfig
		ok    bool
	}{
		{[]NodeConfig{{ID: "n1", URL: "file:///srv/n1"}, {ID: "n2", URL: "s3://k:secret@minio:9000/chunks?secure=false", Zone: "b"}}, true},
		{[]NodeConfig{{ID: "n1", URL: "/srv/n1"}}, false}, // a plain path
		{[]NodeConfig{{ID: "n1", URL: "grpc://chunks:9090"}}, false},
		{[]NodeConfig{{ID: "n1", URL: "s3://k:secret@minio:9000/"}}, false}, // no bucket
		{[]NodeConfig{{ID: "n/1", URL: "file:///srv/n1"}}, false},
		{[]NodeConfig{{ID: "n1", URL: "file:///srv/n1", Zone: strings.Repeat("z", 129)}}, false},
		{[]NodeConfig{{ID: "n1", URL: "file:///srv/n1"}, {ID: "n1", URL: "file:///srv/n2"}}, false},
	} {
		var c Config
		c.Storage.Nodes = tc.nodes
		c.Defaults()
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("storage.nodes %+v: got %v, want ok=%v", tc.nodes, err, tc.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "storage.nodes") || strings.Contains(err.Error(), "secret")) {
			t.Errorf("storage.nodes %+v: error %q does not name the setting, or shows the secret", tc.nodes, err)
		}
	}
}

func TestConfigEvents(t *testing.T) {
	for _, tc := range []struct {
		set func(c *Config)
		ok  bool
	}{
		{func(c *Config) {}, true},
		{func(c *Config) { c.Events.Brokers = []string{"kafka-1:9092", "127.0.0.1:9093"} }, true},
		{func(c *Config) { c.Events.Brokers = []string{"kafka-1"} }, false}, // no port
		{func(c *Config) { c.Events.Partitions = -1 }, false},
		{func(c *Config) { c.Events.Partitions = 1 << 20 }, false},
		{func(c *Config) { c.Events.Attempts = -2 }, false},
		{func(c *Config) { c.Events.Poll = -time.Second }, false},
	} {
		var c Config
		tc.set(&c)
		c.Defaults()
		err := c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("events %+v: got %v, want ok=%v", c.Events, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "events") {
			t.Errorf("events %+v: error %q does not name the setting", c.Events, err)
		}
	}
	var c Config
	c.Defaults()
	if e := c.Events; e.Partitions != 8 || e.Replication != 1 || e.Attempts != 5 || e.Poll != 200*time.Millisecond || len(e.Brokers) != 0 {
		t.Errorf("events defaults %+v", e)
	}
}
