package server

import (
	"fmt"
	"path/filepath"
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
	// DataDir holds the embedded backends' files (meta.db, chunks/, keys).
	DataDir string `yaml:"data_dir"`

	Metadata struct {
		// URL selects the metadata backend: sqlite:///path/meta.db or
		// postgres://user:pass@host:5432/db. Default: sqlite in DataDir.
		URL string `yaml:"url"`
	} `yaml:"metadata"`

	Chunks struct {
		// URL selects the chunk store: file:///path or
		// s3://KEY:SECRET@host:port/bucket. Default: file:// in DataDir.
		URL string `yaml:"url"`
	} `yaml:"chunks"`

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

	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after a signal.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
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
	if c.Chunks.URL == "" {
		c.Chunks.URL = "file://" + filepath.ToSlash(filepath.Join(absOrSelf(c.DataDir), "chunks"))
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
}

func absOrSelf(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
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
	return nil
}
