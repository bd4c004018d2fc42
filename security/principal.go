package security

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Errors of Authenticate, compared with errors.Is; both are answered 401.
var (
	// ErrNoCredentials: the request carries neither a verified client
	// certificate nor a bearer token.
	ErrNoCredentials = errors.New("no credentials: present a client certificate signed by the CA, or an Authorization: Bearer token")
	// ErrBadToken: the bearer token is not in the token file (or the
	// Authorization header is not a bearer token).
	ErrBadToken = errors.New("unknown bearer token")
)

// How a principal proved who it is.
const (
	ViaCertificate = "certificate"
	ViaToken       = "token"
)

// Principal is who a request comes from.
type Principal struct {
	// Name is the certificate's identity or the token's client name.
	Name string
	// Via is ViaCertificate or ViaToken.
	Via string
	// Role is the role the certificate marks (RoleCoordinator,
	// RoleParticipant, RoleClient, or "" for none); RoleClient for a token.
	Role string
	// Operator may see and act on every transaction.
	Operator bool
}

// Authenticator decides who a request comes from: the identity of its
// verified client certificate, or else the client holding its bearer
// token. The zero value accepts certificates only and makes no operators.
type Authenticator struct {
	// Tokens are the clients' bearer tokens; nil accepts none.
	Tokens *Tokens
	// Operators are identities (certificate or token names) that may see
	// and act on every transaction. Token file entries marked operator are
	// operators whether or not they are listed here.
	Operators []string
}

// Authenticate returns r's principal, or an error wrapping
// ErrNoCredentials or ErrBadToken. A verified client certificate wins over
// a token; a token that is presented must be valid even then, so that a
// wrong one is never silently ignored.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	var tok string
	hasTok := false
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) == "" {
			return Principal{}, ErrBadToken
		}
		tok, hasTok = strings.TrimSpace(rest), true
	}
	var tokName string
	var tokOp bool
	if hasTok {
		var ok bool
		if tokName, tokOp, ok = a.Tokens.Lookup(tok); !ok {
			return Principal{}, ErrBadToken
		}
	}
	if id, ok := PeerIdentity(r); ok {
		return Principal{Name: id, Via: ViaCertificate, Role: PeerRole(r), Operator: a.isOperator(id)}, nil
	}
	if hasTok {
		return Principal{Name: tokName, Via: ViaToken, Role: RoleClient, Operator: tokOp || a.isOperator(tokName)}, nil
	}
	return Principal{}, ErrNoCredentials
}

func (a *Authenticator) isOperator(name string) bool {
	for _, o := range a.Operators {
		if o == name {
			return true
		}
	}
	for _, o := range a.Tokens.Operators() {
		if o == name {
			return true
		}
	}
	return false
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal ctx carries, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// BearerTransport adds "Authorization: Bearer Token" to the requests it
// carries through Base (nil: http.DefaultTransport) to Host, over https
// only: a request over any other scheme is refused (the token would travel
// in the clear), and one to another host goes without the token.
type BearerTransport struct {
	Token string
	// Host is the host[:port] of the URLs the token is for; "" means the
	// host of the first request carried.
	Host string
	Base http.RoundTripper

	once sync.Once
	host string
}

var _ http.RoundTripper = (*BearerTransport)(nil)

// ErrPlainHTTP is returned for a request that would carry a credential, or
// travel from a TLS client, over plain http.
var ErrPlainHTTP = errors.New("refused: plain http under TLS or with a bearer token; use https")

// RoundTrip sends req, a copy carrying the token when req is for Host.
func (b *BearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := b.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%w: %s %s", ErrPlainHTTP, req.Method, req.URL.Redacted())
	}
	b.once.Do(func() {
		b.host = b.Host
		if b.host == "" {
			b.host = req.URL.Host
		}
	})
	if !strings.EqualFold(req.URL.Host, b.host) {
		return base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+b.Token)
	return base.RoundTrip(r)
}
