package auth

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/dfms/dfms"
)

// Limits on what users may choose.
const (
	MinPasswordBytes = 8
	MaxPasswordBytes = 72 // bcrypt ignores the rest
	MaxEmailBytes    = 254
	MaxNameRunes     = 100
)

// HashPassword checks pw against the password rules (kind Invalid) and
// returns its bcrypt hash at the configured cost.
func (s *Service) HashPassword(pw string) (string, error) {
	return s.hash("auth.HashPassword", pw)
}

func (s *Service) hash(op dfms.Op, pw string) (string, error) {
	if err := checkPassword(op, pw); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.cfg.BcryptCost)
	if err != nil {
		return "", dfms.E(op, dfms.Other, err)
	}
	return string(h), nil
}

// CheckPassword reports whether pw is the password hashed in hash.
func CheckPassword(hash, pw string) bool {
	return checkPasswordHash([]byte(hash), pw)
}

// checkPasswordHash spends the work of one bcrypt comparison at the hash's
// cost whatever the password's length, so that timing does not tell a
// known account from an unknown one.
func checkPasswordHash(hash []byte, pw string) bool {
	// bcrypt compares only the first 72 bytes; a longer password was never
	// accepted, so it cannot be the right one.
	ok := bcrypt.CompareHashAndPassword(hash, []byte(pw[:min(len(pw), MaxPasswordBytes)])) == nil
	return ok && len(pw) <= MaxPasswordBytes
}

func checkPassword(op dfms.Op, pw string) error {
	switch {
	case len(pw) < MinPasswordBytes:
		return dfms.Errorf(op, dfms.Invalid, fmt.Sprintf("password must be at least %d bytes long", MinPasswordBytes))
	case len(pw) > MaxPasswordBytes:
		return dfms.Errorf(op, dfms.Invalid, fmt.Sprintf("password must be at most %d bytes long", MaxPasswordBytes))
	}
	return nil
}

// checkEmail returns the email without surrounding space. It must be a bare
// address ("a@example.com", not "A <a@example.com>").
func checkEmail(op dfms.Op, email string) (string, error) {
	e := strings.TrimSpace(email)
	switch {
	case e == "":
		return "", dfms.Errorf(op, dfms.Invalid, "email is required")
	case len(e) > MaxEmailBytes:
		return "", dfms.Errorf(op, dfms.Invalid, fmt.Sprintf("email must be at most %d bytes long", MaxEmailBytes))
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", dfms.Errorf(op, dfms.Invalid, "email is not a valid address")
	}
	return e, nil
}

// checkName returns the display name without surrounding space.
func checkName(op dfms.Op, name string) (string, error) {
	n := strings.TrimSpace(name)
	if !utf8.ValidString(n) {
		return "", dfms.Errorf(op, dfms.Invalid, "display name is not valid UTF-8")
	}
	if utf8.RuneCountInString(n) > MaxNameRunes {
		return "", dfms.Errorf(op, dfms.Invalid, fmt.Sprintf("display name must be at most %d characters long", MaxNameRunes))
	}
	if strings.IndexFunc(n, unicode.IsControl) >= 0 {
		return "", dfms.Errorf(op, dfms.Invalid, "display name contains control characters")
	}
	return n, nil
}
