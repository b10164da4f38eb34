package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Config sets the parameters of a Service. Zero fields take the defaults
// shown.
type Config struct {
	Issuer       string        // "dfms"
	Audience     string        // "dfms-api"
	AccessTTL    time.Duration // 15 minutes
	RefreshTTL   time.Duration // 7 days
	BcryptCost   int           // 12; values outside bcrypt's range also mean 12
	DefaultQuota int64         // quota of self-registered users in bytes; 0 is unlimited
}

// Defaults of Config.
const (
	DefaultIssuer     = "dfms"
	DefaultAudience   = "dfms-api"
	DefaultAccessTTL  = 15 * time.Minute
	DefaultRefreshTTL = 7 * 24 * time.Hour
	DefaultBcryptCost = 12
)

func (c Config) withDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.AccessTTL <= 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = DefaultRefreshTTL
	}
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		c.BcryptCost = DefaultBcryptCost
	}
	return c
}

// Service registers and authenticates users and issues their tokens. It is
// safe for concurrent use.
type Service struct {
	store meta.Users
	keys  *Keys
	cfg   Config
	now   func() time.Time // replaced by tests

	// dummyHash is compared against when the email is unknown, so that
	// Login costs the same whether or not an account exists. It is made
	// in the background from New on (a bcrypt hash is a quarter of a
	// second of CPU, which a start need not wait for).
	dummyHash func() []byte

	parser        *jwt.Parser // full validation
	anyTimeParser *jwt.Parser // signature only (logout of expired tokens)

	verified verifiedTokens // access tokens verified already (verified.go)
}

// New returns a Service that keeps users and refresh tokens in m and signs
// with k, which must not be nil.
func New(m meta.Users, k *Keys, c Config) *Service {
	s := &Service{store: m, keys: k, cfg: c.withDefaults(), now: time.Now}
	s.dummyHash = sync.OnceValue(func() []byte {
		// Cannot fail: the cost is in range and the password short.
		h, _ := bcrypt.GenerateFromPassword([]byte("not anyone's password"), s.cfg.BcryptCost)
		return h
	})
	go s.dummyHash()
	methods := jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()})
	s.parser = jwt.NewParser(
		methods,
		jwt.WithIssuer(s.cfg.Issuer),
		jwt.WithAudience(s.cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return s.now() }),
		jwt.WithStrictDecoding(),
	)
	s.anyTimeParser = jwt.NewParser(methods, jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	return s
}

// Register creates an active account with role user and the default quota,
// and logs it in. The email must be a bare address of at most 254 bytes,
// the password 8 to 72 bytes, the display name at most 100 characters with
// no control characters (kind Invalid otherwise). An email that is taken,
// in any case, fails with kind Exist.
func (s *Service) Register(ctx context.Context, email, password, displayName string) (meta.User, Tokens, error) {
	const op dfms.Op = "auth.Register"
	u, err := s.createUser(ctx, op, email, password, displayName, meta.RoleUser, s.cfg.DefaultQuota)
	if err != nil {
		return meta.User{}, Tokens{}, err
	}
	t, err := s.login(ctx, op, u)
	if err != nil {
		return meta.User{}, Tokens{}, err
	}
	return u, t, nil
}

// CreateUser creates an active account with the given role (meta.RoleUser
// or meta.RoleAdmin) and quota (0: unlimited), validated as by Register. It
// is for administrators and bootstrapping, and issues no tokens.
func (s *Service) CreateUser(ctx context.Context, email, password, displayName, role string, quota int64) (meta.User, error) {
	return s.createUser(ctx, "auth.CreateUser", email, password, displayName, role, quota)
}

func (s *Service) createUser(ctx context.Context, op dfms.Op, email, password, displayName, role string, quota int64) (meta.User, error) {
	email, err := checkEmail(op, email)
	if err != nil {
		return meta.User{}, err
	}
	name, err := checkName(op, displayName)
	if err != nil {
		return meta.User{}, err
	}
	if role != meta.RoleUser && role != meta.RoleAdmin {
		return meta.User{}, dfms.Errorf(op, dfms.Invalid, "role must be user or admin")
	}
	if quota < 0 {
		return meta.User{}, dfms.Errorf(op, dfms.Invalid, "quota must not be negative")
	}
	hash, err := s.hash(op, password)
	if err != nil {
		return meta.User{}, err
	}
	u, err := s.store.CreateUser(ctx, meta.User{
		Email:        email,
		PasswordHash: hash,
		DisplayName:  name,
		Role:         role,
		Active:       true,
		QuotaBytes:   quota,
	})
	if dfms.Is(err, dfms.Exist) {
		return meta.User{}, dfms.Errorf(op, dfms.Exist, "email is already registered")
	}
	if err != nil {
		return meta.User{}, dfms.E(op, dfms.Other, err)
	}
	return withoutHash(u), nil
}

// errBadLogin is the one answer to an unknown email and a wrong password.
var errBadLogin = errors.New("invalid email or password")

// Login checks an email (in any case) and password and starts a new family
// of refresh tokens. An unknown email and a wrong password fail alike, with
// kind Unauthenticated; a deactivated account is reported only after the
// right password.
func (s *Service) Login(ctx context.Context, email, password string) (meta.User, Tokens, error) {
	const op dfms.Op = "auth.Login"
	u, err := s.store.GetUserByEmail(ctx, email)
	if dfms.Is(err, dfms.NotExist) {
		checkPasswordHash(s.dummyHash(), password)
		return meta.User{}, Tokens{}, dfms.E(op, dfms.Unauthenticated, errBadLogin)
	}
	if err != nil {
		return meta.User{}, Tokens{}, dfms.E(op, dfms.Other, err)
	}
	if !CheckPassword(u.PasswordHash, password) {
		return meta.User{}, Tokens{}, dfms.E(op, dfms.Unauthenticated, errBadLogin)
	}
	if !u.Active {
		return meta.User{}, Tokens{}, dfms.Errorf(op, dfms.Unauthenticated, "account is deactivated")
	}
	t, err := s.login(ctx, op, u)
	if err != nil {
		return meta.User{}, Tokens{}, err
	}
	return withoutHash(u), t, nil
}

// login starts a refresh-token family for u and issues its first pair.
func (s *Service) login(ctx context.Context, op dfms.Op, u meta.User) (Tokens, error) {
	now := s.now()
	rt := meta.RefreshToken{
		ID:        newID(),
		User:      u.ID,
		Family:    newID(),
		ExpiresAt: now.Add(s.cfg.RefreshTTL).Truncate(time.Second),
	}
	if err := s.store.CreateRefreshToken(ctx, rt); err != nil {
		return Tokens{}, dfms.E(op, dfms.Other, err)
	}
	return s.issue(op, now, u, rt.Family, rt.ID, rt.ExpiresAt)
}

// Refresh exchanges a refresh token for a new pair; the token presented is
// used up. Presenting it again later fails and revokes its family, so the
// newest token of the family fails too. The new access token takes the
// user's email and role from the database, and a deactivated or deleted
// account cannot refresh. Failures have kind Unauthenticated, except for
// store errors.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (meta.User, Tokens, error) {
	const op dfms.Op = "auth.Refresh"
	c, uid, err := s.parse(op, refreshToken, typRefresh, false)
	if err != nil {
		return meta.User{}, Tokens{}, err
	}
	now := s.now()
	next := meta.RefreshToken{
		ID:        newID(),
		User:      uid,
		Family:    c.Fam,
		ExpiresAt: now.Add(s.cfg.RefreshTTL).Truncate(time.Second),
	}
	old, err := s.store.RotateRefreshToken(ctx, c.ID, next)
	switch {
	case dfms.Is(err, dfms.NotExist):
		return meta.User{}, Tokens{}, dfms.Errorf(op, dfms.Unauthenticated, "unknown refresh token")
	case dfms.Is(err, dfms.Permission):
		return meta.User{}, Tokens{}, dfms.Errorf(op, dfms.Unauthenticated, "refresh token expired, revoked or already used")
	case err != nil:
		return meta.User{}, Tokens{}, dfms.E(op, dfms.Other, err)
	}
	// The rest can only fail after next was stored; revoke its family then,
	// so that no usable token is left behind.
	reject := func(msg string) (meta.User, Tokens, error) {
		s.store.RevokeRefreshToken(ctx, next.ID)
		return meta.User{}, Tokens{}, dfms.Errorf(op, dfms.Unauthenticated, msg)
	}
	if old.User != uid || old.Family != c.Fam {
		// Only a forged token could get here.
		return reject("refresh token does not match its record")
	}
	// Re-read the user: the old token says nothing about role or state.
	u, err := s.store.GetUser(ctx, uid)
	if dfms.Is(err, dfms.NotExist) {
		return reject("account does not exist")
	}
	if err != nil {
		s.store.RevokeRefreshToken(ctx, next.ID)
		return meta.User{}, Tokens{}, dfms.E(op, dfms.Other, err)
	}
	if !u.Active {
		return reject("account is deactivated")
	}
	t, err := s.issue(op, now, u, c.Fam, next.ID, next.ExpiresAt)
	if err != nil {
		s.store.RevokeRefreshToken(ctx, next.ID)
		return meta.User{}, Tokens{}, err
	}
	return withoutHash(u), t, nil
}

// Logout revokes the family of a refresh token: that token and every other
// token of the same login. The token must carry a valid signature but may
// have expired. Logging out twice is not an error.
func (s *Service) Logout(ctx context.Context, refreshToken string) error {
	const op dfms.Op = "auth.Logout"
	c, _, err := s.parse(op, refreshToken, typRefresh, true)
	if err != nil {
		return err
	}
	err = s.store.RevokeRefreshToken(ctx, c.ID)
	if dfms.Is(err, dfms.NotExist) {
		return dfms.Errorf(op, dfms.Unauthenticated, "unknown refresh token")
	}
	if err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	return nil
}

// ChangePassword replaces the password of user, who must know the old one
// (kind Unauthenticated otherwise), and revokes every refresh token of the
// user, the caller's own included: each session ends when its access token
// expires, and must log in again. The new password is validated as by
// Register. If revoking fails, the password has already changed and the
// error says so.
func (s *Service) ChangePassword(ctx context.Context, user dfms.UserID, oldPassword, newPassword string) error {
	const op dfms.Op = "auth.ChangePassword"
	u, err := s.store.GetUser(ctx, user)
	if err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	if !CheckPassword(u.PasswordHash, oldPassword) {
		return dfms.Errorf(op, dfms.Unauthenticated, "current password is incorrect")
	}
	if !u.Active {
		return dfms.Errorf(op, dfms.Unauthenticated, "account is deactivated")
	}
	hash, err := s.hash(op, newPassword)
	if err != nil {
		return err
	}
	u.PasswordHash = hash
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	if err := s.store.RevokeUserRefreshTokens(ctx, user); err != nil {
		return dfms.E(op, dfms.Other, errors.Join(errors.New("password changed, but sessions were not revoked"), err))
	}
	return nil
}

// SetActive activates or deactivates an account. Deactivating revokes every
// refresh token of the user; its access tokens still verify until they
// expire, so the HTTP layer checks the flag on each request.
func (s *Service) SetActive(ctx context.Context, user dfms.UserID, active bool) error {
	const op dfms.Op = "auth.SetActive"
	u, err := s.store.GetUser(ctx, user)
	if err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	if u.Active != active {
		u.Active = active
		if err := s.store.UpdateUser(ctx, u); err != nil {
			return dfms.E(op, dfms.Other, err)
		}
	}
	if !active {
		// Even if the account was already inactive: tokens may have been
		// issued before the flag was set by other means.
		if err := s.store.RevokeUserRefreshTokens(ctx, user); err != nil {
			return dfms.E(op, dfms.Other, err)
		}
	}
	return nil
}

// withoutHash keeps password hashes from travelling further than needed.
func withoutHash(u meta.User) meta.User {
	u.PasswordHash = ""
	return u
}
