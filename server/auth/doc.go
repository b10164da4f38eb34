// Package auth authenticates the users of DFMS: it registers accounts,
// checks passwords, and issues and verifies the JSON Web Tokens that the
// REST API accepts.
//
// # Tokens
//
// Every token is a JWT signed with ES256 (ECDSA P-256) by the server's
// [Keys]; no other algorithm is accepted, whatever a token's header says.
// Tokens carry the issuer and audience of the [Config], and a claim "typ"
// that says what they are for:
//
//   - An access token ("typ": "access") lives for Config.AccessTTL (15
//     minutes by default). It names the user (sub, the decimal user id),
//     the email and the role. [Service.Verify] checks it without touching
//     the database, so a token stays valid until it expires even if the
//     account changes meanwhile; the HTTP layer re-checks the active flag
//     on each request, and the short lifetime bounds everything else.
//   - A refresh token ("typ": "refresh") lives for Config.RefreshTTL (7
//     days by default) and is good for exactly one call of
//     [Service.Refresh]. It carries no email or role, only the user id, its
//     family and its id (jti), which is stored in the metadata store.
//
// A refresh token is never accepted where an access token is expected, nor
// the other way round.
//
// # Rotation and reuse detection
//
// Each login starts a family of refresh tokens. Refresh replaces the token
// presented by the next one of its family, in one transaction of the
// metadata store. Presenting a token that was already replaced means that
// two parties hold it, one of them a thief: the store then revokes the
// whole family, so the thief and the rightful owner both lose it, and the
// owner must log in again. Logout revokes the family of the token it is
// given; a password change and a deactivation revoke every family of the
// user.
//
// Refresh reads the user again after rotating: the role, the email and the
// active flag of the new access token come from the database, never from
// the old token. A deactivated account cannot refresh.
//
// # Passwords
//
// Passwords are hashed with bcrypt (cost 12 by default) and must be 8 to 72
// bytes long; bcrypt ignores everything after byte 72, so longer passwords
// are refused rather than silently truncated. Emails are matched without
// regard to case. Login gives one error for an unknown email and a wrong
// password, spends the same bcrypt work on both, and reports a deactivated
// account only to a caller who knows its password.
//
// # Errors
//
// Failed credentials and bad tokens have kind dfms.Unauthenticated, bad
// input has kind dfms.Invalid, and a taken email has kind dfms.Exist. The
// messages are short and safe to show to the caller.
package auth
