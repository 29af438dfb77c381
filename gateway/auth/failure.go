package auth

import (
	"errors"
	"fmt"
)

// FailureKind says why a sign-in failed, so the resident is told what
// happened and what to do, and operators see configuration errors apart
// from a provider that is merely unreachable.
type FailureKind int

const (
	// FailInvalid: an answer or token was wrong (e.g. a code used twice,
	// a nonce that does not match); trying again may work.
	FailInvalid FailureKind = iota
	// FailNetwork: the provider did not answer, timed out or answered 5xx.
	FailNetwork
	// FailConfig: the gateway and the provider disagree on configuration
	// (issuer, client id or secret, endpoints, algorithms); trying again
	// does not help, an operator must act.
	FailConfig
	// FailCancelled: the person cancelled at the provider (error=access_denied).
	FailCancelled
	// FailNoAccess: the sign-in worked, but the identity carries neither a
	// personnummer nor a staff or admin group.
	FailNoAccess
	// FailClock: the ID token is not yet valid or already expired: the
	// clocks of the gateway and the provider differ.
	FailClock
)

func (k FailureKind) String() string {
	switch k {
	case FailNetwork:
		return "network"
	case FailConfig:
		return "configuration"
	case FailCancelled:
		return "cancelled"
	case FailNoAccess:
		return "no_access"
	case FailClock:
		return "clock"
	}
	return "invalid"
}

// Failure is a sign-in error of a known kind.
type Failure struct {
	Kind FailureKind
	Err  error
}

func (f *Failure) Error() string { return fmt.Sprintf("auth: %s: %v", f.Kind, f.Err) }
func (f *Failure) Unwrap() error { return f.Err }

func fail(kind FailureKind, format string, args ...any) error {
	return &Failure{Kind: kind, Err: fmt.Errorf(format, args...)}
}

// KindOf returns the kind of a sign-in error; FailInvalid for errors of no
// known kind.
func KindOf(err error) FailureKind {
	var f *Failure
	if errors.As(err, &f) {
		return f.Kind
	}
	return FailInvalid
}

// ProviderError classifies the error parameter a provider sends back to the
// redirect URI (RFC 6749 4.1.2.1, OIDC Core 3.1.2.6).
func ProviderError(code string) error {
	switch code {
	case "access_denied":
		return fail(FailCancelled, "provider answered %s", code)
	case "temporarily_unavailable", "server_error":
		return fail(FailNetwork, "provider answered %s", code)
	case "invalid_request", "unauthorized_client", "unsupported_response_type", "invalid_scope",
		"invalid_request_uri", "invalid_request_object", "request_not_supported", "request_uri_not_supported", "registration_not_supported":
		return fail(FailConfig, "provider answered %s", code)
	case "login_required", "consent_required", "interaction_required", "account_selection_required":
		return fail(FailCancelled, "provider answered %s", code)
	}
	if len(code) > 64 {
		code = code[:64]
	}
	return fail(FailInvalid, "provider answered %q", code)
}
