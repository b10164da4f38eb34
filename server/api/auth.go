package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
	apiclient "github.com/dfms/dfms/server/api/client"
	"github.com/dfms/dfms/server/auth"
	"github.com/dfms/dfms/server/meta"
)

func userOf(u meta.User) apiclient.User {
	return apiclient.User{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: u.Role, Active: u.Active,
		QuotaBytes: u.QuotaBytes, UsedBytes: u.UsedBytes, RootID: u.Root}
}

// session is the answer of register, login and refresh: the user and the
// tokens at the top level (what clients read). Register also nests them
// under "tokens", the reference API's shape.
func session(u meta.User, toks auth.Tokens, nested bool) gin.H {
	h := gin.H{"user": userOf(u), "access_token": toks.AccessToken, "refresh_token": toks.RefreshToken,
		"token_type": toks.TokenType, "expires_in": toks.ExpiresIn}
	if nested {
		h["tokens"] = toks
	}
	return h
}

func (a *API) register(c *gin.Context) {
	var b struct {
		Email       string `json:"email"`
		Password    string `json:"password"`
		DisplayName string `json:"display_name"`
	}
	if !a.bindJSON(c, &b, false) {
		return
	}
	u, toks, err := a.Auth.Register(c.Request.Context(), b.Email, b.Password, b.DisplayName)
	if err != nil {
		a.failAs(c, err, dfms.Exist, http.StatusConflict, "AUTH_USER_EXISTS", "an account with this email exists")
		return
	}
	c.JSON(http.StatusCreated, session(u, toks, true))
}

func (a *API) login(c *gin.Context) {
	var b struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if !a.bindJSON(c, &b, false) {
		return
	}
	u, toks, err := a.Auth.Login(c.Request.Context(), b.Email, b.Password)
	if err != nil {
		a.failAs(c, err, dfms.Unauthenticated, http.StatusUnauthorized, "AUTH_INVALID_CREDENTIALS", userMessage(err))
		return
	}
	c.JSON(http.StatusOK, session(u, toks, false))
}

// refreshToken decodes the {"refresh_token": …} body of refresh and
// logout, answering 400 if it is missing.
func (a *API) refreshToken(c *gin.Context) (string, bool) {
	var b struct {
		RefreshToken string `json:"refresh_token"`
	}
	if !a.bindJSON(c, &b, false) {
		return "", false
	}
	if b.RefreshToken == "" {
		a.bad(c, "refresh_token is required")
		return "", false
	}
	return b.RefreshToken, true
}

func (a *API) refresh(c *gin.Context) {
	tok, ok := a.refreshToken(c)
	if !ok {
		return
	}
	u, toks, err := a.Auth.Refresh(c.Request.Context(), tok)
	a.reply(c, http.StatusOK, session(u, toks, false), err)
}

func (a *API) logout(c *gin.Context) {
	tok, ok := a.refreshToken(c)
	if !ok {
		return
	}
	err := a.Auth.Logout(c.Request.Context(), tok)
	a.reply(c, http.StatusOK, gin.H{"message": "logged out"}, err)
}

func (a *API) me(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"user": userOf(user(c))})
}

func (a *API) changePassword(c *gin.Context) {
	var b struct {
		OldPassword string `json:"old_password"`
		NewPassword string `json:"new_password"`
	}
	if !a.bindJSON(c, &b, false) {
		return
	}
	if err := a.Auth.ChangePassword(c.Request.Context(), user(c).ID, b.OldPassword, b.NewPassword); err != nil {
		// Unauthenticated here is the old password, not the token.
		a.failAs(c, err, dfms.Unauthenticated, http.StatusForbidden, "AUTH_INVALID_CREDENTIALS", "the current password is wrong")
		return
	}
	c.JSON(http.StatusOK, gin.H{"message": "password changed; every session was signed out"})
}

// ---- admin ----

func (a *API) adminUsers(c *gin.Context) {
	us, err := a.users.ListUsers(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]apiclient.User, len(us))
	for i, u := range us {
		out[i] = userOf(u)
	}
	c.JSON(http.StatusOK, gin.H{"users": out, "total": len(out)})
}

func (a *API) adminPatchUser(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		a.bad(c, "user id %q is not an id", c.Param("id"))
		return
	}
	var b struct {
		Role       *string `json:"role"`
		QuotaBytes *int64  `json:"quota_bytes"`
		Active     *bool   `json:"active"`
	}
	if !a.bindJSON(c, &b, false) {
		return
	}
	u, err := a.users.GetUser(c.Request.Context(), dfms.UserID(id))
	if err != nil {
		a.fail(c, err)
		return
	}
	if b.Active != nil && !*b.Active && u.ID == user(c).ID {
		a.bad(c, "an administrator cannot deactivate their own account")
		return
	}
	if b.Role != nil {
		u.Role = *b.Role
	}
	if b.QuotaBytes != nil {
		u.QuotaBytes = *b.QuotaBytes
	}
	if b.Active != nil {
		u.Active = *b.Active
	}
	// One update for every field: it happens whole or not at all (the
	// store refuses one that leaves no active administrator).
	if err := a.users.UpdateUser(c.Request.Context(), u); err != nil {
		a.fail(c, err)
		return
	}
	if !u.Active {
		// Sign the account out everywhere (its flag is already down).
		if err := a.Auth.SetActive(c.Request.Context(), u.ID, false); err != nil {
			a.fail(c, err)
			return
		}
	}
	u, err = a.users.GetUser(c.Request.Context(), u.ID)
	a.reply(c, http.StatusOK, gin.H{"user": userOf(u)}, err)
}

func (a *API) adminStats(c *gin.Context) {
	us, err := a.users.ListUsers(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	var logical int64
	for _, u := range us {
		logical += u.UsedBytes
	}
	st := a.Files.Stats()
	c.JSON(http.StatusOK, gin.H{"users": len(us), "logical_bytes": logical,
		"since_start": gin.H{"chunks_stored": st.ChunksStored.Load(), "bytes_stored": st.BytesStored.Load(),
			"chunks_deduplicated": st.ChunksDeduped.Load(), "chunks_read": st.ChunksRead.Load(), "bytes_read": st.BytesRead.Load()}})
}

func (a *API) adminGC(c *gin.Context) {
	if a.GC == nil {
		a.fail(c, dfms.Errorf("", dfms.NotSupported, "garbage collection is not configured on this server"))
		return
	}
	report, err := a.GC.Collect(c.Request.Context())
	a.reply(c, http.StatusOK, report, err)
}
