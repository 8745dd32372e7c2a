// Package webauthntest is a software WebAuthn authenticator, together with
// the browser half of a ceremony, for protocol-level tests of relying-party
// code such as [github.com/sspr-go/sspr/flows/webauthn].
//
// An [Authenticator] holds one discoverable ES256 credential (a P-256 key).
// [Authenticator.Create] answers creation options the way
// navigator.credentials.create followed by toJSON() would: it builds
// clientDataJSON, authenticator data (rpIdHash, flags UP|UV|AT, signature
// counter, attested credential data with a COSE key) and an attestation
// object of format "none" encoded as CTAP2 canonical CBOR.
// [Authenticator.Get] answers request options the way
// navigator.credentials.get would, signing authenticatorData ‖
// SHA-256(clientDataJSON). Each result is the JSON a page posts, as
// PublicKeyCredential.toJSON() produces it.
//
// [Option]s bend one ceremony to exercise a relying party's checks: omit
// user verification ([WithoutUV]), replay an old signature counter
// ([WithSignCount]), claim another origin ([WithOrigin]) or RP ID
// ([WithRPID]), or answer although the credential was not asked for
// ([IgnoreAllowCredentials]).
//
// It is for tests only: the key lives in memory, nothing is protected.
package webauthntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator data flags (WebAuthn §6.1).
const (
	FlagUP = 0x01 // user present
	FlagUV = 0x04 // user verified
	FlagBE = 0x08 // backup eligible
	FlagBS = 0x10 // backed up
	FlagAT = 0x40 // attested credential data included
)

// coseAlgES256 is the COSE algorithm identifier of ECDSA with SHA-256.
const coseAlgES256 = -7

// Errors an [Authenticator] returns where a browser would reject the call.
var (
	// ErrExcluded means the credential is listed in excludeCredentials (a
	// browser reports InvalidStateError).
	ErrExcluded = errors.New("webauthntest: credential excluded")
	// ErrNotAllowed means the credential is not in allowCredentials, or no
	// credential was created yet (a browser reports NotAllowedError).
	ErrNotAllowed = errors.New("webauthntest: no allowed credential")
	// ErrOptions means the options JSON could not be used.
	ErrOptions = errors.New("webauthntest: bad options")
)

// Authenticator is a software authenticator with one ES256 credential. It
// is safe for concurrent use. The zero value is not usable; call [New].
type Authenticator struct {
	// Origin is the origin the simulated browser writes into
	// clientDataJSON, for example "https://id.example".
	Origin string
	// AAGUID identifies the authenticator model. Default: all zeros, as
	// browsers report with attestation "none".
	AAGUID [16]byte
	// Transports are reported at registration. Default: ["internal"].
	Transports []string
	// BackupEligible sets the BE and BS flags (a synced passkey).
	BackupEligible bool
	// ZeroCounter makes the authenticator report a signature counter of 0
	// on every ceremony, as synced passkeys do.
	ZeroCounter bool

	mu         sync.Mutex
	key        *ecdsa.PrivateKey
	credID     []byte
	userHandle []byte
	rpID       string
	created    bool
	signCount  uint32
}

// New returns an authenticator for origin with a fresh P-256 key and a
// random 32-byte credential ID. It panics if the system's randomness
// fails, which cannot happen on supported platforms.
func New(origin string) *Authenticator {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("webauthntest: generate key: %v", err))
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &Authenticator{Origin: origin, key: key, credID: id}
}

// CredentialID returns the credential's raw ID.
func (a *Authenticator) CredentialID() []byte { return slices.Clone(a.credID) }

// UserHandle returns the user.id the credential was created for; nil
// before [Authenticator.Create].
func (a *Authenticator) UserHandle() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.userHandle)
}

// SignCount returns the signature counter of the last ceremony.
func (a *Authenticator) SignCount() uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.signCount
}

// Option changes one ceremony.
type Option func(*ceremony)

type ceremony struct {
	noUV, noUP  bool
	count       *uint32
	origin      string
	rpID        string
	ignoreAllow bool
	typ         string
}

// WithoutUV leaves the UV (user verified) flag unset, as an authenticator
// without PIN or biometrics does.
func WithoutUV() Option { return func(c *ceremony) { c.noUV = true } }

// WithoutUP leaves the UP (user present) flag unset.
func WithoutUP() Option { return func(c *ceremony) { c.noUP = true } }

// WithSignCount reports n as the signature counter instead of the next
// value, and leaves the authenticator's counter as it is: use it to replay
// an old count, as a cloned authenticator would.
func WithSignCount(n uint32) Option { return func(c *ceremony) { c.count = &n } }

// WithOrigin writes origin into clientDataJSON instead of
// [Authenticator.Origin], as a phishing site's page would.
func WithOrigin(origin string) Option { return func(c *ceremony) { c.origin = origin } }

// WithRPID hashes rpID into the authenticator data instead of the RP ID of
// the options.
func WithRPID(rpID string) Option { return func(c *ceremony) { c.rpID = rpID } }

// WithType writes typ as clientDataJSON's type instead of "webauthn.get"
// or "webauthn.create".
func WithType(typ string) Option { return func(c *ceremony) { c.typ = typ } }

// IgnoreAllowCredentials answers request options even when the credential
// is not in allowCredentials (a browser would not offer it), and creation
// options even when it is in excludeCredentials.
func IgnoreAllowCredentials() Option { return func(c *ceremony) { c.ignoreAllow = true } }

// descriptor is a PublicKeyCredentialDescriptorJSON.
type descriptor struct {
	ID string `json:"id"`
}

// creationOptions is the part of PublicKeyCredentialCreationOptionsJSON
// the authenticator reads.
type creationOptions struct {
	RP struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	Challenge        string              `json:"challenge"`
	PubKeyCredParams []struct{ Alg int } `json:"pubKeyCredParams"`
	Exclude          []descriptor        `json:"excludeCredentials"`
}

// requestOptions is the part of PublicKeyCredentialRequestOptionsJSON the
// authenticator reads.
type requestOptions struct {
	Challenge string       `json:"challenge"`
	RPID      string       `json:"rpId"`
	Allow     []descriptor `json:"allowCredentials"`
}

// unwrap accepts options either bare or wrapped as {"publicKey": …}.
func unwrap(options []byte) []byte {
	var w struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if json.Unmarshal(options, &w) == nil && len(w.PublicKey) > 0 {
		return w.PublicKey
	}
	return options
}

// Create answers creation options (PublicKeyCredentialCreationOptionsJSON,
// bare or as {"publicKey": …}) and returns the RegistrationResponseJSON a
// page posts. The credential is created for the options' rp.id and
// user.id; its signature counter starts at 0.
func (a *Authenticator) Create(options []byte, opts ...Option) ([]byte, error) {
	c := a.ceremony("webauthn.create", opts)
	var o creationOptions
	if err := json.Unmarshal(unwrap(options), &o); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	challenge, err1 := b64(o.Challenge)
	user, err2 := b64(o.User.ID)
	if err := errors.Join(err1, err2); err != nil || o.RP.ID == "" {
		return nil, fmt.Errorf("%w: challenge, user.id or rp.id: %w", ErrOptions, err)
	}
	if !slices.ContainsFunc(o.PubKeyCredParams, func(p struct{ Alg int }) bool { return p.Alg == coseAlgES256 }) {
		return nil, fmt.Errorf("%w: ES256 not offered", ErrOptions)
	}
	if !c.ignoreAllow && a.listed(o.Exclude) {
		return nil, ErrExcluded
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.rpID, a.userHandle, a.created, a.signCount = o.RP.ID, user, true, 0
	if c.rpID == "" {
		c.rpID = o.RP.ID
	}
	count := a.signCount
	if c.count != nil {
		count = *c.count
	}

	enc, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		return nil, err
	}
	pub, err := a.key.PublicKey.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		return nil, err
	}
	coseKey, err := enc.Marshal(map[int]any{1: 2, 3: coseAlgES256, -1: 1, -2: pub[1:33], -3: pub[33:65]})
	if err != nil {
		return nil, err
	}
	authData := a.authData(c, FlagAT, count)
	authData = append(authData, a.AAGUID[:]...)
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(a.credID)))
	authData = append(authData, a.credID...)
	authData = append(authData, coseKey...)
	attObj, err := enc.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&a.key.PublicKey)
	if err != nil {
		return nil, err
	}
	transports := a.Transports
	if transports == nil {
		transports = []string{"internal"}
	}
	return json.Marshal(map[string]any{
		"id":                      enc64(a.credID),
		"rawId":                   enc64(a.credID),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":     enc64(c.clientData(challenge)),
			"attestationObject":  enc64(attObj),
			"authenticatorData":  enc64(authData),
			"transports":         transports,
			"publicKey":          enc64(spki),
			"publicKeyAlgorithm": coseAlgES256,
		},
	})
}

// Get answers request options (PublicKeyCredentialRequestOptionsJSON, bare
// or as {"publicKey": …}) and returns the AuthenticationResponseJSON a page
// posts. The signature counter advances by one (unless [Authenticator.ZeroCounter]
// or [WithSignCount]). The assertion is scoped to the options' rpId, or to
// the RP ID of the registration when the options carry none.
func (a *Authenticator) Get(options []byte, opts ...Option) ([]byte, error) {
	c := a.ceremony("webauthn.get", opts)
	var o requestOptions
	if err := json.Unmarshal(unwrap(options), &o); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	challenge, err := b64(o.Challenge)
	if err != nil {
		return nil, fmt.Errorf("%w: challenge: %w", ErrOptions, err)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.created {
		return nil, ErrNotAllowed
	}
	if !c.ignoreAllow && len(o.Allow) > 0 && !a.listed(o.Allow) {
		return nil, ErrNotAllowed
	}
	if c.rpID == "" {
		c.rpID = o.RPID
		if c.rpID == "" {
			c.rpID = a.rpID
		}
	}
	var count uint32
	switch {
	case c.count != nil:
		count = *c.count
	case a.ZeroCounter:
		count = 0
	default:
		a.signCount++
		count = a.signCount
	}
	authData := a.authData(c, 0, count)
	clientData := c.clientData(challenge)
	cdHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(slices.Clone(authData), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id":                      enc64(a.credID),
		"rawId":                   enc64(a.credID),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    enc64(clientData),
			"authenticatorData": enc64(authData),
			"signature":         enc64(sig),
			"userHandle":        enc64(a.userHandle),
		},
	})
}

func (a *Authenticator) ceremony(typ string, opts []Option) *ceremony {
	c := &ceremony{origin: a.Origin, typ: typ}
	for _, o := range opts {
		o(c)
	}
	return c
}

// authData returns rpIdHash ‖ flags ‖ signCount.
func (a *Authenticator) authData(c *ceremony, extra byte, count uint32) []byte {
	rpHash := sha256.Sum256([]byte(c.rpID))
	flags := FlagUP | FlagUV | extra
	if c.noUP {
		flags &^= FlagUP
	}
	if c.noUV {
		flags &^= FlagUV
	}
	if a.BackupEligible {
		flags |= FlagBE | FlagBS
	}
	out := append(rpHash[:], flags)
	return binary.BigEndian.AppendUint32(out, count)
}

// clientData returns the CollectedClientData JSON (WebAuthn §5.8.1).
func (c *ceremony) clientData(challenge []byte) []byte {
	b, _ := json.Marshal(struct {
		Type        string `json:"type"`
		Challenge   string `json:"challenge"`
		Origin      string `json:"origin"`
		CrossOrigin bool   `json:"crossOrigin"`
	}{c.typ, enc64(challenge), c.origin, false})
	return b
}

func (a *Authenticator) listed(ds []descriptor) bool {
	for _, d := range ds {
		if id, err := b64(d.ID); err == nil && string(id) == string(a.credID) {
			return true
		}
	}
	return false
}

func enc64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	return base64.RawURLEncoding.DecodeString(s)
}
