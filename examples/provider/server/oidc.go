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
	// maxCodeAttempts is how many second-factor codes one sign-in accepts;
	// after that the user must start again from the app.
	maxCodeAttempts = 5
)

var (
	errRequestNotFound   = errors.New("server: authorization request not found or expired")
	errRequestLocked     = errors.New("server: authorization request locked after too many wrong codes")
	errNoPasskeyCeremony = errors.New("server: no passkey ceremony pending on the authorization request")
	errTooManyRequests   = errors.New("server: too many pending authorization requests")
	errTokenNotFound     = errors.New("server: token not found or expired")
	errClientNotFound    = errors.New("server: client not found")
	errClientSecret      = errors.New("server: wrong client secret")
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
	prompt        []string
	maxAge        time.Duration // valid when hasMaxAge
	hasMaxAge     bool
	acrValues     []string

	// local marks a sign-in the provider started for its own pages (the
	// account page): op never sees it, and it ends at returnTo instead of
	// at a client.
	local    bool
	returnTo string

	// Set by the login page once the password was right for a user with a
	// second factor; codeAttempts counts the codes and passkey assertions
	// tried (at most maxCodeAttempts, then the request is locked).
	mfaUserID    string
	codeAttempts int
	// passkeySession is the opaque session of the passkey ceremony the
	// passkey page started for mfaUserID (webauthn.Flow.BeginLogin): kept
	// here, out of the browser's reach, and handed out once by
	// takePasskeySession. Copies never carry it.
	passkeySession []byte

	// Set by the login page. Before that, userID is the subject of the
	// id_token_hint, if any.
	userID   string
	authTime time.Time
	amr      []string
	acr      string
	done     bool

	// Set by SaveAuthCode.
	code         string
	codeIssuedAt time.Time
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return a.acr }
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
	c.prompt = slices.Clone(a.prompt)
	c.acrValues = slices.Clone(a.acrValues)
	c.passkeySession = nil
	return &c
}

// locked reports whether the request took its last wrong code: the user
// must start again from the app.
func (a *authRequest) locked() bool { return !a.done && a.codeAttempts >= maxCodeAttempts }

// forcesLogin reports whether the request asks for a fresh sign-in
// whatever the browser's session: prompt=login or select_account, or
// max_age=0 (op turns prompt=login into max_age=0 as well).
func (a *authRequest) forcesLogin() bool {
	return slices.Contains(a.prompt, oidc.PromptLogin) || slices.Contains(a.prompt, oidc.PromptSelectAccount) ||
		(a.hasMaxAge && a.maxAge == 0)
}

// promptNone reports whether the request forbids showing any page.
func (a *authRequest) promptNone() bool { return slices.Contains(a.prompt, oidc.PromptNone) }

// wantsMFA reports whether the client asked for a second factor through
// acr_values.
func (a *authRequest) wantsMFA() bool { return slices.Contains(a.acrValues, ACRMFA) }

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
	clients map[string]*client
	users   *Directory
	key     *signingKey
	now     func() time.Time
	logger  *slog.Logger

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

func newOIDCStorage(cs []*client, users *Directory, key *signingKey, now func() time.Time, logger *slog.Logger) *oidcStorage {
	clients := map[string]*client{}
	for _, c := range cs {
		clients[c.id] = c
	}
	return &oidcStorage{
		clients:  clients,
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

// CreateAuthRequest stores a validated authorization request with its
// prompt, max_age and acr_values, which the login page honours (op does
// not). PKCE is optional but, when used, must be S256. userID is the
// subject of a valid id_token_hint, if any.
func (s *oidcStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
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
		prompt:        slices.Clone(req.Prompt),
		acrValues:     slices.Clone(req.ACRValues),
		userID:        userID,
	}
	if req.MaxAge != nil {
		a.maxAge, a.hasMaxAge = time.Duration(*req.MaxAge)*time.Second, true
	}
	if err := s.add(a); err != nil {
		return nil, oidc.ErrServerError().WithDescription("Too many pending sign-ins; try again in a few minutes.")
	}
	return a.clone(), nil
}

// createLocalRequest starts a sign-in for the provider's own pages, which
// ends at returnTo (a path on this server). op never sees it.
func (s *oidcStorage) createLocalRequest(returnTo string) (string, error) {
	id, err := randomToken(16)
	if err != nil {
		return "", err
	}
	return id, s.add(&authRequest{id: id, createdAt: s.now(), local: true, returnTo: returnTo})
}

// add stores a new request, unless too many are pending.
func (s *oidcStorage) add(a *authRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) >= maxPendingRequests {
		s.sweepLocked(s.now())
		if len(s.requests) >= maxPendingRequests {
			return errTooManyRequests
		}
	}
	s.requests[a.id] = a
	return nil
}

// pendingRequest returns a copy of a live authorization request.
func (s *oidcStorage) pendingRequest(id string) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveLocked(id)
	if err != nil {
		return nil, err
	}
	return a.clone(), nil
}

// liveLocked returns a request that has not expired and has no code yet.
func (s *oidcStorage) liveLocked(id string) (*authRequest, error) {
	a, ok := s.requests[id]
	if !ok || s.now().Sub(a.createdAt) > authRequestTTL || a.code != "" {
		return nil, errRequestNotFound
	}
	return a, nil
}

// completeRequest records a successful sign-in on a pending request. It
// refuses a request that is already complete or locked.
func (s *oidcStorage) completeRequest(id, userID string, authTime time.Time, amr []string, acr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveLocked(id)
	if err != nil || a.done || a.locked() {
		return errRequestNotFound
	}
	a.userID = userID
	a.authTime = authTime
	a.amr = slices.Clone(amr)
	a.acr = acr
	a.done = true
	return nil
}

// passwordVerified records that userID gave the right password and now
// owes a second factor. The code attempts already made stay counted.
func (s *oidcStorage) passwordVerified(id, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveLocked(id)
	if err != nil || a.done || a.locked() {
		return errRequestNotFound
	}
	a.mfaUserID = userID
	a.passkeySession = nil
	return nil
}

// setPasskeySession keeps the session of a passkey ceremony just begun for
// userID on a request that waits for that user's second factor, replacing
// the one of an earlier page (only the newest page's passkey answer can
// then complete the sign-in).
func (s *oidcStorage) setPasskeySession(id, userID string, session []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveLocked(id)
	switch {
	case err != nil, a.done, a.mfaUserID == "", a.mfaUserID != userID:
		return errRequestNotFound
	case a.locked():
		return errRequestLocked
	}
	a.passkeySession = slices.Clone(session)
	return nil
}

// takePasskeySession removes the passkey ceremony session of a request
// that waits for a second factor and returns it with the user it is for:
// a session serves one answer, right or wrong. It returns
// errNoPasskeyCeremony when the request has none (used already, or never
// begun), errRequestLocked for a locked request.
func (s *oidcStorage) takePasskeySession(id string) (userID string, session []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveLocked(id)
	switch {
	case err != nil, a.done, a.mfaUserID == "":
		return "", nil, errRequestNotFound
	case a.locked():
		return "", nil, errRequestLocked
	case a.passkeySession == nil:
		return "", nil, errNoPasskeyCeremony
	}
	session, a.passkeySession = a.passkeySession, nil
	return a.mfaUserID, session, nil
}

// beginCodeAttempt counts one code (or passkey) attempt on a request that
// waits for a second factor and returns the user it is for and the attempts left after
// this one. Counting before checking means that concurrent guesses cannot
// exceed maxCodeAttempts. It returns errRequestLocked when none is left.
func (s *oidcStorage) beginCodeAttempt(id string) (userID string, left int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.liveLocked(id)
	switch {
	case err != nil, a.done, a.mfaUserID == "":
		return "", 0, errRequestNotFound
	case a.locked():
		return "", 0, errRequestLocked
	}
	a.codeAttempts++
	return a.mfaUserID, maxCodeAttempts - a.codeAttempts, nil
}

// refundCodeAttempt gives back an attempt whose code or passkey answer
// was not checked (a fault on our side, an unreadable answer, an expired
// ceremony).
func (s *oidcStorage) refundCodeAttempt(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.requests[id]; ok && a.codeAttempts > 0 && !a.done {
		a.codeAttempts--
	}
}

// AuthRequestByID returns a copy of a pending request. The provider's own
// (local) sign-ins are not op's business.
func (s *oidcStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	a, err := s.pendingRequest(id)
	if err != nil || a.local {
		return nil, errRequestNotFound
	}
	return a, nil
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
// authorization request, forgets the passwords verified on requests that
// wait for a second factor, and reports how many tokens it dropped.
func (s *oidcStorage) revokeUser(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.revokeLocked(func(subject, _ string) bool { return subject == userID })
	for id, a := range s.requests {
		switch {
		case a.done && a.userID == userID:
			delete(s.codes, a.code)
			delete(s.requests, id)
		case a.mfaUserID == userID:
			a.mfaUserID = ""
			a.passkeySession = nil
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

// GetClientByClientID returns a registered client: demo-app, or sspr's own
// step-up client.
func (s *oidcStorage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	c, ok := s.clients[clientID]
	if !ok {
		return nil, errClientNotFound
	}
	return c, nil
}

// AuthorizeClientIDSecret checks a client secret in constant time.
func (s *oidcStorage) AuthorizeClientIDSecret(_ context.Context, clientID, secret string) error {
	c, ok := s.clients[clientID]
	if !ok {
		return errClientNotFound
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) != 1 {
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
