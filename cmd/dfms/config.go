package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/dfms/dfms/server"
)

// configOptions are the flags shared by the commands that open backends.
type configOptions struct {
	file     string
	addr     string
	data     string
	metadata string
	chunks   string
	algo     string
	logLevel string
	logFmt   string
	// trustedProxies is comma-separated.
	trustedProxies string
	metricsAddr    string
	// The chunk service's (addChunkServiceFlags).
	chunkListen, chunkTLSCert, chunkTLSKey, chunkClientCA, chunkOpsAddr string
	// addrIsWorker makes --addr the worker's ops address (worker.addr),
	// not the API's (addWorkerFlags).
	addrIsWorker bool
}

func (o *configOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.file, "config", "", "YAML configuration file (env DFMS_CONFIG)")
	fs.StringVar(&o.addr, "addr", "", "HTTP listen address (env DFMS_ADDR; default 127.0.0.1:8080)")
	fs.StringVar(&o.data, "data", "", "data directory of the embedded backends (env DFMS_DATA; default $XDG_DATA_HOME/dfms or ./data)")
	fs.StringVar(&o.metadata, "metadata", "", "metadata URL: sqlite:///path or postgres://... (env DFMS_METADATA_URL)")
	fs.StringVar(&o.chunks, "chunks", "", "chunk store URL: file:///path, s3://KEY:SECRET@host/bucket or a chunk service, grpc://host:port (env DFMS_CHUNKS_URL)")
	fs.StringVar(&o.algo, "chunking-algorithm", "", "content-defined chunking: gear or rabin (env DFMS_CHUNKING_ALGORITHM)")
	fs.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (env DFMS_LOG_LEVEL)")
	fs.StringVar(&o.logFmt, "log-format", "", "text or json (env DFMS_LOG_FORMAT)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics on this address instead of --addr, e.g. 127.0.0.1:9090 (env DFMS_METRICS_ADDR)")
	fs.StringVar(&o.trustedProxies, "trusted-proxies", "", "comma-separated IPs or CIDR prefixes of the reverse proxies whose X-Forwarded-For is believed (env DFMS_TRUSTED_PROXIES; default none)")
}

// addChunkServiceFlags adds the flags of `dfms chunk-service`.
func (o *configOptions) addChunkServiceFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.chunkListen, "listen", "", "gRPC listen address of the chunk service (env DFMS_CHUNK_SERVICE_LISTEN; default 127.0.0.1:9091)")
	fs.StringVar(&o.chunkTLSCert, "tls-cert", "", "TLS certificate (PEM) of the chunk service; with --tls-key, clients use grpcs:// (env DFMS_CHUNK_SERVICE_TLS_CERT)")
	fs.StringVar(&o.chunkTLSKey, "tls-key", "", "TLS private key (PEM) of the chunk service (env DFMS_CHUNK_SERVICE_TLS_KEY)")
	fs.StringVar(&o.chunkClientCA, "client-ca", "", "with TLS, require client certificates signed by this CA (PEM) (env DFMS_CHUNK_SERVICE_CLIENT_CA)")
	fs.StringVar(&o.chunkOpsAddr, "ops-addr", "", "HTTP address of the chunk service's /health, /ready and /metrics (env DFMS_CHUNK_SERVICE_OPS_ADDR; default 127.0.0.1:9092)")
}

// addWorkerFlags makes --addr a worker's: where it serves /health,
// /ready and /metrics.
func (o *configOptions) addWorkerFlags(fs *pflag.FlagSet) {
	o.addrIsWorker = true
	fs.Lookup("addr").Usage = "HTTP address of the worker's /health, /ready and /metrics (env DFMS_WORKER_ADDR; default per kind, see dfms worker --help)"
	// Accepted, so that one configuration fits every role, but the API's.
	for _, f := range []string{"metrics-addr", "trusted-proxies", "chunking-algorithm"} {
		fs.MarkHidden(f)
	}
}

// configCommand is a command without arguments that opens backends: it
// has the configuration flags (and those that each of extra adds), and run
// gets the configuration they, the environment and the file make (a bad
// one is a usage error).
func configCommand(use, short string, run func(cmd *cobra.Command, cfg server.Config) error, extra ...func(*configOptions, *pflag.FlagSet)) *cobra.Command {
	var o configOptions
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.NoArgs(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.load(os.Getenv)
			if err != nil {
				return err
			}
			return run(cmd, cfg)
		},
	}
	o.addFlags(cmd.Flags())
	for _, add := range extra {
		add(&o, cmd.Flags())
	}
	return cmd
}

// envVars maps each DFMS_* variable to the setting it overrides.
func envVars(c *server.Config) map[string]any {
	return map[string]any{
		"DFMS_ADDR":                    &c.Addr,
		"DFMS_METRICS_ADDR":            &c.MetricsAddr,
		"DFMS_DATA":                    &c.DataDir,
		"DFMS_TRUSTED_PROXIES":         &c.TrustedProxies,
		"DFMS_METADATA_URL":            &c.Metadata.URL,
		"DFMS_CHUNKS_URL":              &c.Chunks.URL,
		"DFMS_CHUNK_SERVICE_LISTEN":    &c.ChunkService.Listen,
		"DFMS_CHUNK_SERVICE_TLS_CERT":  &c.ChunkService.TLSCert,
		"DFMS_CHUNK_SERVICE_TLS_KEY":   &c.ChunkService.TLSKey,
		"DFMS_CHUNK_SERVICE_CLIENT_CA": &c.ChunkService.ClientCA,
		"DFMS_CHUNK_SERVICE_OPS_ADDR":  &c.ChunkService.OpsAddr,
		"DFMS_WORKER_ADDR":             &c.Worker.Addr,
		"DFMS_CHUNKING_ALGORITHM":      &c.Chunking.Algorithm,
		"DFMS_CHUNKING_MIN_SIZE":       &c.Chunking.MinSize,
		"DFMS_CHUNKING_AVG_SIZE":       &c.Chunking.AvgSize,
		"DFMS_CHUNKING_MAX_SIZE":       &c.Chunking.MaxSize,
		"DFMS_LOG_LEVEL":               &c.Log.Level,
		"DFMS_LOG_FORMAT":              &c.Log.Format,
		"DFMS_SHUTDOWN_TIMEOUT":        &c.ShutdownTimeout,
		"DFMS_ADMIN_EMAIL":             &c.Admin.Email,
		"DFMS_ADMIN_PASSWORD":          &c.Admin.Password,
		"DFMS_JWT_PRIVATE_KEY":         &c.Auth.PrivateKey,
		"DFMS_JWT_PUBLIC_KEY":          &c.Auth.PublicKey,
		"DFMS_JWT_ISSUER":              &c.Auth.Issuer,
		"DFMS_BCRYPT_COST":             &c.Auth.BcryptCost,
		"DFMS_MAX_UPLOAD_SIZE":         &c.Storage.MaxUploadSize,
		"DFMS_DEFAULT_QUOTA":           &c.Storage.DefaultQuota,
		"DFMS_UPLOAD_TTL":              &c.Storage.UploadTTL,
		"DFMS_UPLOAD_LIFETIME":         &c.Storage.UploadLifetime,
		"DFMS_MAX_OPEN_UPLOADS":        &c.Storage.MaxOpenUploads,
		"DFMS_VERSIONS_KEEP_LAST":      &c.Versions.KeepLast,
		"DFMS_VERSIONS_KEEP_DAYS":      &c.Versions.KeepDays,
		"DFMS_RATE_LIMIT_URL":          &c.RateLimit.URL,
		"DFMS_RATE_LIMIT_FAIL_OPEN":    &c.RateLimit.FailOpen,
		"DFMS_RATE_LIMIT_GLOBAL":       &c.RateLimit.Global,
		"DFMS_RATE_LIMIT_USER":         &c.RateLimit.User,
		"DFMS_RATE_LIMIT_AUTH":         &c.RateLimit.Auth,
		"DFMS_RATE_LIMIT_UPLOAD":       &c.RateLimit.Upload,
		"DFMS_RATE_LIMIT_DOWNLOAD":     &c.RateLimit.Download,
		"DFMS_GC_INTERVAL":             &c.GC.Interval,
		"DFMS_GC_GRACE":                &c.GC.Grace,
		"DFMS_GC_LEASE":                &c.GC.Lease,
		"DFMS_STORAGE_REPLICAS":        &c.Storage.Replicas,
		"DFMS_WRITE_QUORUM":            &c.Storage.WriteQuorum,
		"DFMS_HEALTH_INTERVAL":         &c.Health.Interval,
		"DFMS_REPAIR_INTERVAL":         &c.Repair.Interval,
		"DFMS_REPAIR_DOWN_DELAY":       &c.Repair.DownDelay,
		"DFMS_SCRUB_INTERVAL":          &c.Scrub.Interval,
		"DFMS_EVENTS_BROKERS":          &c.Events.Brokers,
		"DFMS_EVENTS_PARTITIONS":       &c.Events.Partitions,
		"DFMS_EVENTS_REPLICATION":      &c.Events.Replication,
		"DFMS_EVENTS_ATTEMPTS":         &c.Events.Attempts,
	}
}

// load builds the configuration: defaults < YAML file < environment <
// flags. getenv is os.Getenv outside tests.
func (o *configOptions) load(getenv func(string) string) (server.Config, error) {
	var c server.Config
	file := o.file
	if file == "" {
		file = getenv("DFMS_CONFIG")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return c, usageError{fmt.Errorf("config: %w", err)}
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true) // a misspelt key is an error, not a silent default
		if err := dec.Decode(&c); err != nil {
			return c, usageError{fmt.Errorf("config %s: %w", file, err)}
		}
	}
	for name, dst := range envVars(&c) {
		v := getenv(name)
		if v == "" {
			continue
		}
		if err := setValue(dst, v); err != nil {
			return c, usageError{fmt.Errorf("%s=%q: %w", name, v, err)}
		}
	}
	addr := &c.Addr
	if o.addrIsWorker {
		addr = &c.Worker.Addr
	}
	for _, f := range []struct {
		flag string
		dst  *string
	}{
		{o.addr, addr}, {o.chunkOpsAddr, &c.ChunkService.OpsAddr}, {o.metricsAddr, &c.MetricsAddr}, {o.data, &c.DataDir}, {o.metadata, &c.Metadata.URL}, {o.chunks, &c.Chunks.URL},
		{o.algo, &c.Chunking.Algorithm}, {o.logLevel, &c.Log.Level}, {o.logFmt, &c.Log.Format},
		{o.chunkListen, &c.ChunkService.Listen}, {o.chunkTLSCert, &c.ChunkService.TLSCert},
		{o.chunkTLSKey, &c.ChunkService.TLSKey}, {o.chunkClientCA, &c.ChunkService.ClientCA},
	} {
		if f.flag != "" {
			*f.dst = f.flag
		}
	}
	if o.trustedProxies != "" {
		setValue(&c.TrustedProxies, o.trustedProxies)
	}
	if c.DataDir == "" {
		if x := getenv("XDG_DATA_HOME"); x != "" {
			c.DataDir = filepath.Join(x, "dfms")
		}
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

func setValue(dst any, v string) error {
	switch p := dst.(type) {
	case *string:
		*p = v
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return err
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return err
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return err
		}
		*p = b
	case *[]string: // comma-separated
		*p = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				*p = append(*p, s)
			}
		}
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		*p = d
	default:
		return fmt.Errorf("unsupported setting type %T", dst)
	}
	return nil
}
