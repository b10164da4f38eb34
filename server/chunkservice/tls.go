package chunkservice

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/dfms/dfms"
)

// TLSConfig returns the service's TLS configuration from PEM files: its
// certificate and key and, if clientCA is not empty, the authorities that
// sign its clients' certificates, which are then required (mutual TLS: a
// client's grpcs:// URL names its cert and key). Errors have kind Invalid.
func TLSConfig(certFile, keyFile, clientCA string) (*tls.Config, error) {
	const op dfms.Op = "chunkservice.TLSConfig"
	if certFile == "" || keyFile == "" {
		return nil, dfms.Errorf(op, dfms.Invalid, "TLS needs both a certificate and a key")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("TLS certificate and key: %w", err))
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("client CA: %w", err))
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("client CA: no PEM certificate in %s", clientCA))
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
