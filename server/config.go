package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
)

// Config is everything `dfms server` can be told. The zero value of a field
// means its default (see Defaults). cmd/dfms fills it from, in increasing
// precedence: a YAML file, DFMS_* environment variables, flags.
type Config struct {
	// Addr is the HTTP listen address.
	Addr string `yaml:"addr"`
	// MetricsAddr, if set, is where /metrics is served instead of Addr,
	// so that the metrics need not be public (127.0.0.1:9090, or an
	// address only the monitoring network reaches).
	MetricsAddr string `yaml:"metrics_addr"`
	// DataDir holds the embedded backends' files (meta.db, chunks/, keys).
	DataDir string `yaml:"data_dir"`
	// TrustedProxies are the reverse proxies (IP addresses or CIDR
	// prefixes) whose X-Forwarded-For and X-Real-IP headers name the
	// client. Default: none, so a client cannot choose the address its
	// rate limits count against. Set it to the proxy's network (Traefik's
	// in a compose deployment).
	TrustedProxies []string `yaml:"trusted_proxies"`

	Metadata struct {
		// URL selects the metadata backend: sqlite:///path/meta.db or
		// postgres://user:pass@host:5432/db. Default: sqlite in DataDir.
		URL string `yaml:"url"`
	} `yaml:"metadata"`

	Chunks struct {
		// URL selects the chunk store: file:///path,
		// s3://KEY:SECRET@host:port/bucket, or a chunk service,
		// grpc://host:port or grpcs://host:port?ca=… (package
		// placement/store lists the forms). Default: file:// in DataDir.
		URL string `yaml:"url"`
	} `yaml:"chunks"`

	// ChunkService configures `dfms chunk-service`, which serves the
	// chunk store of Chunks.URL (a local one) over gRPC.
	ChunkService struct {
		// Listen is its gRPC address. Default 127.0.0.1:9091.
		Listen string `yaml:"listen"`
		// TLSCert and TLSKey (PEM files) turn TLS on: clients then use
		// grpcs://. Both or neither.
		TLSCert string `yaml:"tls_cert"`
		TLSKey  string `yaml:"tls_key"`
		// ClientCA (a PEM file), with TLS, makes the service require a
		// client certificate that it signed (mutual TLS), so that only
		// holders of one may read, write or delete chunks. Without it,
		// anyone who reaches Listen may.
		ClientCA string `yaml:"client_ca"`
		// OpsAddr is its HTTP address for /health, /ready and
		// /metrics. Default 127.0.0.1:9092.
		OpsAddr string `yaml:"ops_addr"`
	} `yaml:"chunk_service"`

	// Worker configures `dfms worker KIND`.
	Worker struct {
		// Addr is the HTTP address where a worker serves /health, /ready
		// and /metrics. Default: one per kind (WorkerKinds), so that one
		// worker of each kind fits on a host: 127.0.0.1:9093 for gc,
		// :9094 for replication, :9095 for health, :9096 for relay.
		Addr string `yaml:"addr"`
	} `yaml:"worker"`

	// Chunking is part of the storage format: fixed per deployment.
	Chunking struct {
		Algorithm string `yaml:"algorithm"`
		MinSize   int    `yaml:"min_size"`
		AvgSize   int    `yaml:"avg_size"`
		MaxSize   int    `yaml:"max_size"`
	} `yaml:"chunking"`

	Log struct {
		Level  string `yaml:"level"`  // debug, info, warn, error
		Format string `yaml:"format"` // text or json
	} `yaml:"log"`

	Auth struct {
		// PrivateKey and PublicKey are PEM files (dfms keygen); if unset the
		// keys are generated into DataDir/keys on first start.
		PrivateKey string        `yaml:"private_key"`
		PublicKey  string        `yaml:"public_key"`
		Issuer     string        `yaml:"issuer"`
		AccessTTL  time.Duration `yaml:"access_ttl"`
		RefreshTTL time.Duration `yaml:"refresh_ttl"`
		// BcryptCost of new password hashes (default 12; lower only for
		// tests: each step halves the work of a guess).
		BcryptCost int `yaml:"bcrypt_cost"`
	} `yaml:"auth"`

	// Admin, when both are set, is created as an administrator on start
	// if no user has that email (DFMS_ADMIN_EMAIL, DFMS_ADMIN_PASSWORD).
	Admin struct {
		Email    string `yaml:"email"`
		Password string `yaml:"password"`
	} `yaml:"admin"`

	Storage struct {
		MaxUploadSize int64 `yaml:"max_upload_size"` // bytes per file
		PartSize      int64 `yaml:"part_size"`       // suggested multipart part size
		DefaultQuota  int64 `yaml:"default_quota"`   // bytes per new user; 0 = unlimited
		// A multipart upload expires UploadTTL after its last part
		// (default 24h), and UploadLifetime after it started however busy
		// (default a week, at least UploadTTL); a user may have
		// MaxOpenUploads open at once (default 100).
		UploadTTL      time.Duration `yaml:"upload_ttl"`
		UploadLifetime time.Duration `yaml:"upload_lifetime"`
		MaxOpenUploads int           `yaml:"max_open_uploads"`

		// Nodes, if any, are the storage nodes of a cluster: chunks are
		// replicated over them (placed by the hash ring) instead of kept
		// in the single store of chunks.url. They are registered in the
		// metadata store on start; nodes added through the admin API join
		// them.
		Nodes []NodeConfig `yaml:"nodes"`
		// Replicas is the replication factor R (0: 1 for one node, 2 for
		// two or three, 3 from four); WriteQuorum the copies a write
		// needs (0: all R).
		Replicas    int `yaml:"replicas"`
		WriteQuorum int `yaml:"write_quorum"`
	} `yaml:"storage"`

	// Versions is the retention of each file's history: a version other
	// than the current one is deleted once it is not among the newest
	// KeepLast and older than KeepDays (an unset rule does not protect).
	Versions struct {
		KeepLast int `yaml:"keep_last"`
		KeepDays int `yaml:"keep_days"`
	} `yaml:"versions"`

	// RateLimit: requests per minute per tier (0: the default; negative:
	// unlimited).
	RateLimit struct {
		URL      string `yaml:"url"` // mem:// (default) or redis://host:port/db
		FailOpen bool   `yaml:"fail_open"`
		Global   int    `yaml:"global"`
		User     int    `yaml:"user"`
		Auth     int    `yaml:"auth"`
		Upload   int    `yaml:"upload"`
		Download int    `yaml:"download"`
	} `yaml:"rate_limit"`

	// Health is the storage nodes' health monitor (with storage.nodes):
	// a probe of each node every Interval (default 10s), failing after
	// Timeout (5s); DownAfter failures in a row (3) mark a node down,
	// UpAfter successes (2) up again.
	Health struct {
		Interval  time.Duration `yaml:"interval"`
		Timeout   time.Duration `yaml:"timeout"`
		DownAfter int           `yaml:"down_after"`
		UpAfter   int           `yaml:"up_after"`
	} `yaml:"health"`

	// Repair is the replication manager (with storage.nodes): a pass
	// over every chunk each Interval (default 1m) copies missing copies to
	// their owners and removes surplus ones; a node down for less than
	// DownDelay (default 10m) is waited for; MaxBytesPerSec bounds the
	// copying (default 100 MiB/s; negative: no bound).
	Repair struct {
		Interval       time.Duration `yaml:"interval"`
		DownDelay      time.Duration `yaml:"down_delay"`
		MaxBytesPerSec int64         `yaml:"max_bytes_per_sec"`
	} `yaml:"repair"`

	// Scrub re-reads and re-hashes every copy of every chunk each
	// Interval (default a week; negative: never), repairing bad ones.
	Scrub struct {
		Interval time.Duration `yaml:"interval"`
	} `yaml:"scrub"`

	GC struct {
		Interval time.Duration `yaml:"interval"` // default 1h; negative disables the in-process collector
		Grace    time.Duration `yaml:"grace"`
		// Lease is how long a collector's deletion mark keeps the other
		// collectors away (default 10m; see workers/gc): a collector that
		// stalls or loses its lock blocks a re-upload of a chunk it marked
		// at most that long.
		Lease time.Duration `yaml:"lease"`
	} `yaml:"gc"`

	// Events configures the event bus that the outbox is relayed to:
	// Kafka (or a broker speaking its protocol) at Brokers, or, with
	// none, an in-process bus.
	Events struct {
		Brokers     []string `yaml:"brokers"`     // host:port of bootstrap brokers
		Partitions  int      `yaml:"partitions"`  // of the topics DFMS creates; default 8
		Replication int      `yaml:"replication"` // their replication factor; default 1
		// Attempts is how many times a consumer tries an event before
		// parking it in the dead-letter topic (default 5).
		Attempts int `yaml:"attempts"`
		// Poll is how often the relay looks at an empty outbox (default
		// 200ms).
		Poll time.Duration `yaml:"poll"`
	} `yaml:"events"`

	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after a signal.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// NodeConfig declares a storage node.
type NodeConfig struct {
	ID string `yaml:"id"`
	// URL is the node's chunk store: file:///path or
	// s3://KEY:SECRET@host:port/bucket, each node its own directory,
	// endpoint or bucket.
	URL    string `yaml:"url"`
	Weight int    `yaml:"weight"` // share of chunks; 0: 100
	Zone   string `yaml:"zone"`   // failure domain
}

// Defaults fills every unset field with its default.
func (c *Config) Defaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Metadata.URL == "" {
		c.Metadata.URL = "sqlite://" + filepath.ToSlash(filepath.Join(absOrSelf(c.DataDir), "meta.db"))
	}
	if c.Chunks.URL == "" && len(c.Storage.Nodes) == 0 {
		c.Chunks.URL = "file://" + filepath.ToSlash(filepath.Join(absOrSelf(c.DataDir), "chunks"))
	}
	if c.ChunkService.Listen == "" {
		c.ChunkService.Listen = "127.0.0.1:9091"
	}
	if c.ChunkService.OpsAddr == "" {
		c.ChunkService.OpsAddr = "127.0.0.1:9092"
	}
	d := chunking.DefaultParams()
	if c.Chunking.Algorithm == "" {
		c.Chunking.Algorithm = string(d.Algorithm)
	}
	if c.Chunking.MinSize == 0 {
		c.Chunking.MinSize = d.Min
	}
	if c.Chunking.AvgSize == 0 {
		c.Chunking.AvgSize = d.Avg
	}
	if c.Chunking.MaxSize == 0 {
		c.Chunking.MaxSize = d.Max
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Storage.MaxUploadSize == 0 {
		c.Storage.MaxUploadSize = 10 << 30
	}
	if c.Storage.PartSize == 0 {
		c.Storage.PartSize = 64 << 20
	}
	if c.Storage.UploadTTL == 0 {
		c.Storage.UploadTTL = 24 * time.Hour
	}
	if c.Storage.UploadLifetime == 0 {
		c.Storage.UploadLifetime = max(7*24*time.Hour, c.Storage.UploadTTL)
	}
	if c.Storage.MaxOpenUploads == 0 {
		c.Storage.MaxOpenUploads = 100
	}
	if c.Repair.Interval == 0 {
		c.Repair.Interval = time.Minute
	}
	if c.Repair.DownDelay == 0 {
		c.Repair.DownDelay = 10 * time.Minute
	}
	if c.Repair.MaxBytesPerSec == 0 {
		c.Repair.MaxBytesPerSec = 100 << 20
	}
	if c.Scrub.Interval == 0 {
		c.Scrub.Interval = 7 * 24 * time.Hour
	}
	for i := range c.Storage.Nodes {
		if c.Storage.Nodes[i].Weight == 0 {
			c.Storage.Nodes[i].Weight = dfms.DefaultNodeWeight
		}
	}
	if c.RateLimit.URL == "" {
		c.RateLimit.URL = "mem://"
	}
	rl := &c.RateLimit
	for _, d := range []struct {
		v   *int
		def int
	}{{&rl.Global, 600000}, {&rl.User, 120000}, {&rl.Auth, 20}, {&rl.Upload, 60000}, {&rl.Download, 120000}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.GC.Interval == 0 {
		c.GC.Interval = time.Hour
	}
	if c.Events.Partitions == 0 {
		c.Events.Partitions = 8
	}
	if c.Events.Replication == 0 {
		c.Events.Replication = 1
	}
	if c.Events.Attempts == 0 {
		c.Events.Attempts = 5
	}
	if c.Events.Poll == 0 {
		c.Events.Poll = 200 * time.Millisecond
	}
	if c.GC.Grace == 0 {
		c.GC.Grace = 24 * time.Hour
	}
}

func absOrSelf(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// HoldFor is how long a chunk stored without a reference counts against
// its sender's quota: as long as GC may keep it, its grace period plus the
// interval between collections (an hour when the collector runs
// elsewhere).
func (c *Config) HoldFor() time.Duration {
	every := c.GC.Interval
	if every <= 0 {
		every = time.Hour
	}
	return c.GC.Grace + every
}

// ChunkingParams returns the chunking parameters.
func (c *Config) ChunkingParams() chunking.Params {
	return chunking.Params{Algorithm: chunking.Algorithm(c.Chunking.Algorithm),
		Min: c.Chunking.MinSize, Avg: c.Chunking.AvgSize, Max: c.Chunking.MaxSize}
}

// Validate reports the first invalid setting (kind Invalid).
func (c *Config) Validate() error {
	const op dfms.Op = "server.Config.Validate"
	if err := c.ChunkingParams().Validate(); err != nil {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("chunking: %w", err))
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return dfms.E(op, dfms.Invalid, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return dfms.E(op, dfms.Invalid, fmt.Errorf("log.format %q: want text or json", c.Log.Format))
	}
	if c.ShutdownTimeout < 0 {
		return dfms.Errorf(op, dfms.Invalid, "shutdown_timeout is negative")
	}
	if c.Storage.MaxUploadSize < 0 || c.Storage.PartSize <= 0 || c.Storage.DefaultQuota < 0 {
		return dfms.Errorf(op, dfms.Invalid, "storage sizes must not be negative")
	}
	if c.Storage.UploadTTL < time.Minute || c.Storage.UploadLifetime < c.Storage.UploadTTL {
		return dfms.Errorf(op, dfms.Invalid, "storage.upload_ttl must be at least a minute, and upload_lifetime at least upload_ttl")
	}
	if c.Storage.MaxOpenUploads < 1 {
		return dfms.Errorf(op, dfms.Invalid, "storage.max_open_uploads must be positive")
	}
	if c.Versions.KeepLast < 0 || c.Versions.KeepDays < 0 {
		return dfms.Errorf(op, dfms.Invalid, "versions.keep_last and keep_days must not be negative")
	}
	// A short grace costs writes, never data: a write that outlives it
	// may find a chunk collected and is refused (kind Conflict, nothing
	// committed; see server/files and workers/gc). Below a minute is for
	// tests.
	if c.GC.Grace < time.Second {
		return dfms.Errorf(op, dfms.Invalid, "gc.grace must be at least a second")
	}
	if c.GC.Lease != 0 && c.GC.Lease < time.Second {
		return dfms.Errorf(op, dfms.Invalid, "gc.lease must be at least a second")
	}
	if (c.Admin.Email == "") != (c.Admin.Password == "") {
		return dfms.Errorf(op, dfms.Invalid, "set both the admin email and password, or neither")
	}
	if c.Auth.BcryptCost != 0 && (c.Auth.BcryptCost < 4 || c.Auth.BcryptCost > 31) {
		return dfms.Errorf(op, dfms.Invalid, "auth.bcrypt_cost must be between 4 and 31")
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return dfms.E(op, dfms.Invalid, fmt.Errorf("trusted_proxies: %q is not an IP address or a CIDR prefix", p))
			}
		}
	}
	if err := c.validateNodes(); err != nil {
		return dfms.E(op, dfms.Invalid, err)
	}
	if err := c.validateEvents(); err != nil {
		return dfms.E(op, dfms.Invalid, err)
	}
	if (c.Auth.PrivateKey == "") != (c.Auth.PublicKey == "") {
		return dfms.Errorf(op, dfms.Invalid, "set both auth.private_key and auth.public_key, or neither")
	}
	cs := c.ChunkService
	for _, a := range []struct{ key, addr string }{
		{"addr", c.Addr}, {"metrics_addr", c.MetricsAddr}, {"chunk_service.listen", cs.Listen},
		{"chunk_service.ops_addr", cs.OpsAddr}, {"worker.addr", c.Worker.Addr},
	} {
		if err := checkAddr(a.addr); err != nil {
			return dfms.E(op, dfms.Invalid, fmt.Errorf("%s: %w", a.key, err))
		}
	}
	if (cs.TLSCert == "") != (cs.TLSKey == "") {
		return dfms.Errorf(op, dfms.Invalid, "set both chunk_service.tls_cert and tls_key, or neither")
	}
	if cs.ClientCA != "" && cs.TLSCert == "" {
		return dfms.Errorf(op, dfms.Invalid, "chunk_service.client_ca needs TLS: set tls_cert and tls_key too")
	}
	return nil
}

// checkAddr checks a listen address, host:port (the host may be empty:
// every interface); "" is unset.
func checkAddr(a string) error {
	if a == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", a, port)
	}
	return nil
}

// validateEvents checks the event bus's settings.
func (c *Config) validateEvents() error {
	e := c.Events
	if e.Partitions < 0 || e.Replication < 0 || e.Attempts < 0 || e.Poll < 0 {
		return fmt.Errorf("events: partitions, replication, attempts and poll must not be negative")
	}
	if e.Partitions > 10000 || e.Replication > 16 || e.Attempts > 1000 {
		return fmt.Errorf("events: at most 10000 partitions, 16 replicas and 1000 attempts")
	}
	for _, b := range e.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("events.brokers: %q is not host:port", b)
		}
	}
	return nil
}

// validateNodes checks the storage nodes and the replication settings.
func (c *Config) validateNodes() error {
	st := &c.Storage
	if c.Repair.Interval < 0 || c.Repair.DownDelay < 0 {
		return fmt.Errorf("repair.interval and down_delay must not be negative")
	}
	if h := c.Health; h.Interval < 0 || h.Timeout < 0 || h.DownAfter < 0 || h.UpAfter < 0 {
		return fmt.Errorf("health settings must not be negative")
	}
	if st.Replicas < 0 || st.WriteQuorum < 0 {
		return fmt.Errorf("storage.replicas and write_quorum must not be negative")
	}
	if len(st.Nodes) == 0 {
		if st.Replicas > 1 || st.WriteQuorum > 1 {
			return fmt.Errorf("storage.replicas: replication needs storage.nodes")
		}
		return nil
	}
	if c.Chunks.URL != "" {
		return fmt.Errorf("chunks.url and storage.nodes are both set: the nodes hold the chunks")
	}
	seen := make(map[string]bool, len(st.Nodes))
	urls := make(map[string]string, len(st.Nodes))
	for _, n := range st.Nodes {
		if other, dup := urls[n.URL]; dup {
			return fmt.Errorf("storage.nodes: nodes %s and %s have the same url", other, n.ID)
		}
		urls[n.URL] = n.ID
		switch {
		case n.ID == "" || n.URL == "":
			return fmt.Errorf("storage.nodes: every node needs an id and a url")
		case seen[n.ID]:
			return fmt.Errorf("storage.nodes: node id %q is declared twice", n.ID)
		case n.Weight < 0:
			return fmt.Errorf("storage.nodes: node %q has a negative weight", n.ID)
		}
		// As the metadata store and the admin API check a node.
		if err := (dfms.StorageNode{ID: n.ID, URL: n.URL, Weight: n.Weight, Zone: n.Zone}).Check(); err != nil {
			var de *dfms.Error
			if errors.As(err, &de) && de.Err != nil {
				err = de.Err // the reason, without the operation
			}
			return fmt.Errorf("storage.nodes: %w", err)
		}
		seen[n.ID] = true
	}
	if st.Replicas > len(st.Nodes) {
		return fmt.Errorf("storage.replicas is %d with %d nodes", st.Replicas, len(st.Nodes))
	}
	if st.Replicas != 0 && st.WriteQuorum > st.Replicas || st.WriteQuorum > len(st.Nodes) {
		return fmt.Errorf("storage.write_quorum %d exceeds the replication factor", st.WriteQuorum)
	}
	return nil
}
