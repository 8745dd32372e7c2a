package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Lifetimes of what the provider keeps in memory.
const (
	authRequestTTL  = 30 * time.Minute
	codeTTL         = 2 * time.Minute
	accessTokenTTL  = 15 * time.Minute
	refreshTokenTTL = 8 * time.Hour
	idTokenTTL      = time.Hour
	// maxPendingRequests bounds the memory anonymous /authorize calls can
	// take between two sweeps.
	maxPendingRequests = 10_000
)

var (
	errRequestNotFound = errors.New("server: authorization request not found or expired")
	errTokenNotFound   = errors.New("server: token not found or expired")
	errClientNotFound  = errors.New("server: client not found")
	errClientSecret    = errors.New("server: wrong client secret")
)

// authRequest is one pending authorization request. The storage hands out
// copies, so the op package never reads a value the login page is changing.
type authRequest struct {
	id            string
	createdAt     time.Time
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge
	loginHint     string

	// Set by the login page.
	userID   string
	authTime time.Time
	amr      []string
	done     bool

	// Set by SaveAuthCode.
	code         string
	codeIssuedAt time.Time
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return slices.Clone(a.amr) }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return slices.Clone(a.scopes) }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.userID }
func (a *authRequest) Done() bool                            { return a.done }

// LogValue keeps state, nonce and code out of logs.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", a.id), slog.String("client", a.clientID), slog.Bool("done", a.done))
}

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	c.amr = slices.Clone(a.amr)
	return &c
}

type accessToken struct {
	id             string
	clientID       string
	subject        string
	audience       []string
	scopes         []string
	expiresAt      time.Time
	refreshTokenID string
}

type refreshToken struct {
	id            string // SHA-256 of the token, hex; the token itself is never stored
	clientID      string
	subject       string
	audience      []string
	scopes        []string
	authTime      time.Time
	amr           []string
	expiresAt     time.Time
	accessTokenID string
}

// refreshTokenRequest is what op sees of a refresh token during the
// refresh_token grant.
type refreshTokenRequest struct{ t refreshToken }

var _ op.RefreshTokenRequest = (*refreshTokenRequest)(nil)

func (r *refreshTokenRequest) GetAMR() []string                 { return slices.Clone(r.t.amr) }
func (r *refreshTokenRequest) GetAudience() []string            { return slices.Clone(r.t.audience) }
func (r *refreshTokenRequest) GetAuthTime() time.Time           { return r.t.authTime }
func (r *refreshTokenRequest) GetClientID() string              { return r.t.clientID }
func (r *refreshTokenRequest) GetScopes() []string              { return slices.Clone(r.t.scopes) }
func (r *refreshTokenRequest) GetSubject() string               { return r.t.subject }
func (r *refreshTokenRequest) SetCurrentScopes(scopes []string) { r.t.scopes = slices.Clone(scopes) }

// oidcStorage implements op.Storage. Users come from the [Directory];
// authorization requests, codes and tokens live in memory.
type oidcStorage struct {
	client *client
	users  *Directory
	key    *signingKey
	now    func() time.Time
	logger *slog.Logger

	mu       sync.Mutex
	requests map[string]*authRequest
	codes    map[string]string        // code → request ID
	access   map[string]*accessToken  // token ID → token
	refresh  map[string]*refreshToken // SHA-256 of the token → token
}

var (
	_ op.Storage                   = (*oidcStorage)(nil)
	_ op.CanSetUserinfoFromRequest = (*oidcStorage)(nil)
)

func newOIDCStorage(c *client, users *Directory, key *signingKey, now func() time.Time, logger *slog.Logger) *oidcStorage {
	return &oidcStorage{
		client:   c,
		users:    users,
		key:      key,
		now:      now,
		logger:   logger,
		requests: map[string]*authRequest{},
		codes:    map[string]string{},
		access:   map[string]*accessToken{},
		refresh:  map[string]*refreshToken{},
	}
}

// CreateAuthRequest stores a validated authorization request. This provider
// keeps no browser session, so prompt=none can never succeed; PKCE is
// optional but, when used, must be S256.
func (s *oidcStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	var challenge *oidc.CodeChallenge
	if req.CodeChallenge != "" {
		if req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
			return nil, oidc.ErrInvalidRequest().WithDescription("Only the S256 code_challenge_method is supported.")
		}
		challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	id, err := randomToken(16)
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	now := s.now()
	a := &authRequest{
		id:            id,
		createdAt:     now,
		clientID:      req.ClientID,
		redirectURI:   req.RedirectURI,
		state:         req.State,
		nonce:         req.Nonce,
		scopes:        slices.Clone(req.Scopes),
		responseType:  req.ResponseType,
		responseMode:  req.ResponseMode,
		codeChallenge: challenge,
		loginHint:     req.LoginHint,
		userID:        userID,
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) >= maxPendingRequests {
		s.sweepLocked(now)
		if len(s.requests) >= maxPendingRequests {
			return nil, oidc.ErrServerError().WithDescription("Too many pending sign-ins; try again in a few minutes.")
		}
	}
	s.requests[id] = a
	return a.clone(), nil
}

// pendingRequest returns a copy of a live authorization request.
func (s *oidcStorage) pendingRequest(id string) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[id]
	if !ok || s.now().Sub(a.createdAt) > authRequestTTL {
		return nil, errRequestNotFound
	}
	return a.clone(), nil
}

// completeRequest records a successful sign-in on a pending request.
func (s *oidcStorage) completeRequest(id, userID string, authTime time.Time, amr []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[id]
	if !ok || s.now().Sub(a.createdAt) > authRequestTTL || a.code != "" {
		return errRequestNotFound
	}
	a.userID = userID
	a.authTime = authTime
	a.amr = slices.Clone(amr)
	a.done = true
	return nil
}

// AuthRequestByID returns a copy of a pending request.
func (s *oidcStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	return s.pendingRequest(id)
}

// AuthRequestByCode returns the request a code was issued for, while the
// code is fresh. op deletes the request (and with it the code) once it has
// answered the token request, so a code works once.
func (s *oidcStorage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok {
		return nil, errRequestNotFound
	}
	a, ok := s.requests[id]
	if !ok || !a.done || s.now().Sub(a.codeIssuedAt) > codeTTL {
		return nil, errRequestNotFound
	}
	return a.clone(), nil
}

// SaveAuthCode binds a code to a completed request; a request gets one code.
func (s *oidcStorage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[id]
	if !ok || !a.done || a.code != "" {
		return errRequestNotFound
	}
	a.code = code
	a.codeIssuedAt = s.now()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest forgets a request and its code.
func (s *oidcStorage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[id]; ok {
		delete(s.codes, a.code)
		delete(s.requests, id)
	}
	return nil
}

// tokenFacts reads what the token requests op passes us have in common.
func tokenFacts(req op.TokenRequest) (clientID string, authTime time.Time, amr []string) {
	if r, ok := req.(interface{ GetClientID() string }); ok {
		clientID = r.GetClientID()
	}
	if r, ok := req.(interface{ GetAuthTime() time.Time }); ok {
		authTime = r.GetAuthTime()
	}
	if r, ok := req.(interface{ GetAMR() []string }); ok {
		amr = r.GetAMR()
	}
	return clientID, authTime, amr
}

func (s *oidcStorage) newAccessTokenLocked(clientID string, req op.TokenRequest, refreshID string) (*accessToken, error) {
	id, err := randomToken(16)
	if err != nil {
		return nil, err
	}
	t := &accessToken{
		id:             id,
		clientID:       clientID,
		subject:        req.GetSubject(),
		audience:       slices.Clone(req.GetAudience()),
		scopes:         slices.Clone(req.GetScopes()),
		expiresAt:      s.now().Add(accessTokenTTL),
		refreshTokenID: refreshID,
	}
	s.access[id] = t
	return t, nil
}

// CreateAccessToken creates an access token without a refresh token.
func (s *oidcStorage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	clientID, _, _ := tokenFacts(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.newAccessTokenLocked(clientID, req, "")
	if err != nil {
		return "", time.Time{}, err
	}
	return t.id, t.expiresAt, nil
}

// CreateAccessAndRefreshTokens creates an access token and a refresh token.
// With a current refresh token (the refresh_token grant) it rotates: the
// current token and its access token stop working.
func (s *oidcStorage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	clientID, authTime, amr := tokenFacts(req)
	newRefresh, err := randomToken(32)
	if err != nil {
		return "", "", time.Time{}, err
	}
	refreshID := hashToken(newRefresh)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if current != "" {
		old, ok := s.refresh[hashToken(current)]
		if !ok || now.After(old.expiresAt) || old.clientID != clientID {
			return "", "", time.Time{}, fmt.Errorf("server: rotate refresh token: %w", op.ErrInvalidRefreshToken)
		}
		delete(s.refresh, old.id)
		delete(s.access, old.accessTokenID)
		authTime, amr = old.authTime, old.amr
	}
	at, err := s.newAccessTokenLocked(clientID, req, refreshID)
	if err != nil {
		return "", "", time.Time{}, err
	}
	s.refresh[refreshID] = &refreshToken{
		id:            refreshID,
		clientID:      clientID,
		subject:       req.GetSubject(),
		audience:      slices.Clone(req.GetAudience()),
		scopes:        slices.Clone(req.GetScopes()),
		authTime:      authTime,
		amr:           slices.Clone(amr),
		expiresAt:     now.Add(refreshTokenTTL),
		accessTokenID: at.id,
	}
	return at.id, newRefresh, at.expiresAt, nil
}

// TokenRequestByRefreshToken returns the grant behind a live refresh token.
func (s *oidcStorage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refresh[hashToken(token)]
	if !ok || s.now().After(t.expiresAt) {
		return nil, fmt.Errorf("server: refresh token: %w", op.ErrInvalidRefreshToken)
	}
	c := *t
	c.audience, c.scopes, c.amr = slices.Clone(t.audience), slices.Clone(t.scopes), slices.Clone(t.amr)
	return &refreshTokenRequest{t: c}, nil
}

// TerminateSession drops the tokens one client holds for a user (sign-out).
func (s *oidcStorage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLocked(func(subject, client string) bool { return subject == userID && client == clientID })
	return nil
}

// revokeUser drops every token of a user and every completed but unredeemed
// authorization request, and reports how many tokens it dropped.
func (s *oidcStorage) revokeUser(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.revokeLocked(func(subject, _ string) bool { return subject == userID })
	for id, a := range s.requests {
		if a.done && a.userID == userID {
			delete(s.codes, a.code)
			delete(s.requests, id)
		}
	}
	return n
}

func (s *oidcStorage) revokeLocked(match func(subject, clientID string) bool) int {
	n := 0
	for id, t := range s.access {
		if match(t.subject, t.clientID) {
			delete(s.access, id)
			n++
		}
	}
	for id, t := range s.refresh {
		if match(t.subject, t.clientID) {
			delete(s.refresh, id)
			n++
		}
	}
	return n
}

// RevokeToken revokes an access token (by ID) or a refresh token (by value),
// and a refresh token's access token with it. Unknown tokens are ignored
// (RFC 7009 §2.2).
func (s *oidcStorage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.access[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("The token was not issued to this client.")
		}
		delete(s.access, t.id)
		return nil
	}
	if t, ok := s.refresh[hashToken(tokenOrID)]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("The token was not issued to this client.")
		}
		delete(s.refresh, t.id)
		delete(s.access, t.accessTokenID)
	}
	return nil
}

// GetRefreshTokenInfo reports the user and ID of a refresh token.
func (s *oidcStorage) GetRefreshTokenInfo(_ context.Context, _, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refresh[hashToken(token)]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.subject, t.id, nil
}

// SigningKey returns the RSA key that signs ID tokens.
func (s *oidcStorage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

// SignatureAlgorithms lists RS256 only.
func (s *oidcStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.key.SignatureAlgorithm()}, nil
}

// KeySet returns the public half of the signing key, for /keys.
func (s *oidcStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

// GetClientByClientID returns demo-app, the only client.
func (s *oidcStorage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	if clientID != s.client.id {
		return nil, errClientNotFound
	}
	return s.client, nil
}

// AuthorizeClientIDSecret checks a client secret in constant time.
func (s *oidcStorage) AuthorizeClientIDSecret(_ context.Context, clientID, secret string) error {
	if clientID != s.client.id {
		return errClientNotFound
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.client.secret)) != 1 {
		return errClientSecret
	}
	return nil
}

// SetUserinfoFromScopes is deprecated by op; SetUserinfoFromRequest does the work.
func (s *oidcStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the claims of an ID token.
func (s *oidcStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(ctx, info, req.GetSubject(), scopes)
}

// SetUserinfoFromToken answers /userinfo for a live access token.
func (s *oidcStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.liveAccessToken(tokenID, subject)
	if err != nil {
		return err
	}
	return s.setUserinfo(ctx, info, t.subject, t.scopes)
}

// SetIntrospectionFromToken answers /oauth/introspect for a client the
// token was issued to.
func (s *oidcStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.liveAccessToken(tokenID, subject)
	if err != nil {
		return err
	}
	if !slices.Contains(t.audience, clientID) {
		return errTokenNotFound
	}
	info := new(oidc.UserInfo)
	if err := s.setUserinfo(ctx, info, t.subject, t.scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.Expiration = oidc.FromTime(t.expiresAt)
	return nil
}

func (s *oidcStorage) liveAccessToken(tokenID, subject string) (accessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.access[tokenID]
	if !ok || t.subject != subject || s.now().After(t.expiresAt) {
		return accessToken{}, errTokenNotFound
	}
	c := *t
	c.audience, c.scopes = slices.Clone(t.audience), slices.Clone(t.scopes)
	return c, nil
}

func (s *oidcStorage) setUserinfo(ctx context.Context, info *oidc.UserInfo, userID string, scopes []string) error {
	u, err := s.users.User(ctx, userID)
	if err != nil {
		return err
	}
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeOpenID:
			info.Subject = u.ID
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = true
		case oidc.ScopeProfile:
			info.Name = u.DisplayName
			info.PreferredUsername = u.Username
		}
	}
	return nil
}

// GetPrivateClaimsFromScopes adds no custom claims.
func (s *oidcStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID is for the JWT profile grant, which this provider
// does not offer.
func (s *oidcStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("server: the JWT profile grant is not supported")
}

// ValidateJWTProfileScopes is for the JWT profile grant, which this provider
// does not offer.
func (s *oidcStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("server: the JWT profile grant is not supported")
}

// Health reports whether the user database answers.
func (s *oidcStorage) Health(ctx context.Context) error {
	return s.users.ping(ctx)
}

// sweep forgets expired requests and tokens.
func (s *oidcStorage) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
}

func (s *oidcStorage) sweepLocked(now time.Time) {
	for id, a := range s.requests {
		if now.Sub(a.createdAt) > authRequestTTL {
			delete(s.codes, a.code)
			delete(s.requests, id)
		}
	}
	for id, t := range s.access {
		if now.After(t.expiresAt) {
			delete(s.access, id)
		}
	}
	for id, t := range s.refresh {
		if now.After(t.expiresAt) {
			delete(s.refresh, id)
		}
	}
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// client is demo-app, a confidential web client using the authorization
// code flow.
type client struct {
	id           string
	secret       string
	redirectURIs []string
	loginURL     string // absolute URL of the login page, without query
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return slices.Clone(c.redirectURIs) }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return idTokenTTL }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

func (c *client) LoginURL(authRequestID string) string {
	return c.loginURL + "?" + url.Values{"authRequestID": {authRequestID}}.Encode()
}

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}
