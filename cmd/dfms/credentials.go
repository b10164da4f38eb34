package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dfms/dfms/server/api/client"
)

// credentials is the stored login, written by `dfms login` to
// $XDG_CONFIG_HOME/dfms/credentials.json (mode 0600).
type credentials struct {
	Server       string `json:"server"`
	Email        string `json:"email,omitempty"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// xdgDir returns $<env>/dfms, or ~/<fallback>/dfms.
func xdgDir(env, fallback string) (string, error) {
	if d := os.Getenv(env); filepath.IsAbs(d) {
		return filepath.Join(d, "dfms"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", usageError{fmt.Errorf("set %s or HOME: %w", env, err)}
	}
	return filepath.Join(home, fallback, "dfms"), nil
}

func credentialsPath() (string, error) {
	dir, err := xdgDir("XDG_CONFIG_HOME", ".config")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "credentials.json"), nil
}

// loadCredentials reads the stored login; ok is false if there is none.
func loadCredentials() (c credentials, ok bool, err error) {
	p, err := credentialsPath()
	if err != nil {
		return c, false, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, false, fmt.Errorf("%s: %w (log in again)", p, err)
	}
	return c, true, nil
}

func saveCredentials(c credentials) error {
	p, err := credentialsPath()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(p, append(b, '\n'))
}

// saveTokens is the client option that stores the tokens a client gets
// (at login, and at each refresh) as the login creds.
func saveTokens(creds credentials) client.Option {
	return client.WithTokenSaver(func(t client.Tokens) error {
		creds.AccessToken, creds.RefreshToken = t.Access, t.Refresh
		return saveCredentials(creds)
	})
}

// writeFileAtomic replaces path with data (mode 0600), creating its
// directory with mode 0700: readers see the old or the new file, whole.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// Ours (…/dfms): tokens must not be listable by others.
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
