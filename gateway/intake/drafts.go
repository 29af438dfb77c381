package intake

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/personnummer"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// Drafts is the use case "save a form and finish it later", for every way
// one starts:
//
//   - a signed-in resident saves a draft; it is listed on My pages (only to
//     them) and opens in any browser after signing in;
//   - an anonymous resident saves a draft and gets a resume code, shown
//     once; the code opens the draft once, in any browser;
//   - service-point staff hand a form started at the desk over to the
//     visitor: a one-time code on the printed slip, which opens the draft
//     only for the person whose personnummer the desk recorded, after they
//     signed in with e-ID; what they then send is their own digital
//     submission.
//
// A draft holds only the service's own fields (gateway.DraftValues), never
// what the sign-in gives (prefilled fields), is at most MaxBytes, expires
// (TTL, CodeTTL), and an owner keeps a bounded number (PerPerson,
// PerBrowser, PerDesk). Codes are stored only as a digest, and a draft
// found by a code is sealed with a key made from it. Draft contents never
// reach the logs.
type Drafts struct {
	store DraftStore
	desk  Desk
	log   *slog.Logger
	cfg   DraftConfig
}

// DraftStore keeps saved drafts (*redisstore.Store implements it). id names
// a draft (the store keeps only its digest); owner names the index that
// bounds one owner's count.
type DraftStore interface {
	// SaveDraft reports false, storing nothing, when owner has max drafts.
	SaveDraft(ctx context.Context, owner, id string, data []byte, ttl time.Duration, max int) (bool, error)
	LoadDraft(ctx context.Context, id string) ([]byte, error)
	// TakeDraft returns and deletes; nil when there is none.
	TakeDraft(ctx context.Context, id string) ([]byte, error)
	ListDrafts(ctx context.Context, owner string, max int) ([][]byte, error)
}

// DraftConfig holds the drafts' settings.
type DraftConfig struct {
	// TTL is how long a signed-in resident's draft is kept after it was
	// last saved; CodeTTL a draft found by a code (anonymous or handover).
	TTL, CodeTTL time.Duration
	// MaxBytes bounds one draft (its JSON).
	MaxBytes int
	// PerPerson, PerBrowser and PerDesk bound the drafts a signed-in
	// resident, an anonymous browser and a staff member (handovers) keep.
	PerPerson, PerBrowser, PerDesk int
	StoreTimeout                   time.Duration
	Location                       *time.Location
	Now                            func() time.Time
}

// DraftConfigDefault is the configuration used for unset fields.
var DraftConfigDefault = DraftConfig{
	TTL: 30 * 24 * time.Hour, CodeTTL: 7 * 24 * time.Hour, MaxBytes: 32 * 1024,
	PerPerson: 20, PerBrowser: 5, PerDesk: 200,
	StoreTimeout: ConfigDefault.StoreTimeout, Location: ConfigDefault.Location, Now: time.Now,
}

// Errors of the drafts, as causes of *gateway.Error.
var (
	ErrDraftTooLarge = errors.New("intake: draft too large")
	ErrDraftLimit    = errors.New("intake: too many drafts")
	ErrDraftSignIn   = errors.New("intake: sign in to open this draft")
)

// NewDrafts returns the drafts' use case; desk (for the audit of
// handovers) may be nil, and then handovers are refused.
func NewDrafts(store DraftStore, desk Desk, log *slog.Logger, cfg DraftConfig) (*Drafts, error) {
	if store == nil {
		return nil, errors.New("intake: a DraftStore is required")
	}
	def := DraftConfigDefault
	if cfg.TTL <= 0 {
		cfg.TTL = def.TTL
	}
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = def.CodeTTL
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = def.MaxBytes
	}
	if cfg.PerPerson <= 0 {
		cfg.PerPerson = def.PerPerson
	}
	if cfg.PerBrowser <= 0 {
		cfg.PerBrowser = def.PerBrowser
	}
	if cfg.PerDesk <= 0 {
		cfg.PerDesk = def.PerDesk
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = def.StoreTimeout
	}
	if cfg.Location == nil {
		cfg.Location = def.Location
	}
	if cfg.Now == nil {
		cfg.Now = def.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Drafts{store: store, desk: desk, log: log, cfg: cfg}, nil
}

// Config returns the drafts' settings (with defaults applied).
func (d *Drafts) Config() DraftConfig { return d.cfg }

// DraftIDPattern is the shape of a signed-in resident's draft id.
var DraftIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{24}$`)

// SaveRequest is a form to keep for later.
type SaveRequest struct {
	Service   *gateway.Service
	Principal *gateway.Principal
	Values    map[string][]string
	Step      int
	Started   string
	// ID is a signed-in resident's draft being saved again (the form was
	// opened from it); "" or another's id saves a new one.
	ID string
	// Browser names an anonymous resident's browser (a digest of its
	// cookie), whose drafts are counted.
	Browser string
}

// Saved is a kept draft: for a signed-in resident with its ID; for anyone
// else with the Code that opens it, to show once and never again.
type Saved struct {
	Draft gateway.Draft
	Code  string
}

// resident is the signed-in person a draft can belong to; "" for anyone
// else (anonymous, machine clients, staff without a resident role).
func resident(p *gateway.Principal) string {
	if p == nil || p.Machine || !p.HasRole(gateway.RoleResident) {
		return ""
	}
	return p.Subject
}

func userIndex(subject string) string { return "user:" + subject }
func codeID(code string) string       { return "code:" + code }

// A draft found by a code is sealed with a key made from the code
// (AES-256-GCM): without the code, what Redis holds cannot be read, and
// the code itself is stored nowhere (only a digest names the key).
func codeKey(code string) cipher.AEAD {
	k := sha256.Sum256([]byte("servicegateway draft\x00" + code))
	block, _ := aes.NewCipher(k[:]) // 32 bytes: never fails
	gcm, _ := cipher.NewGCM(block)  // a standard block: never fails
	return gcm
}

func sealCode(code string, plain []byte) []byte {
	gcm := codeKey(code)
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	return gcm.Seal(nonce, nonce, plain, []byte(codeID(code)))
}

func openCode(code string, sealed []byte) ([]byte, bool) {
	gcm := codeKey(code)
	if len(sealed) < gcm.NonceSize() {
		return nil, false
	}
	plain, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], []byte(codeID(code)))
	return plain, err == nil
}

// decodeCode reads a draft found by code; false when there is none.
func decodeCode(code string, sealed []byte, dr *gateway.Draft) bool {
	if sealed == nil {
		return false
	}
	b, ok := openCode(code, sealed)
	return ok && json.Unmarshal(b, dr) == nil
}

// Save keeps a form: a signed-in resident's under their name (the same
// draft again when r.ID is theirs), anyone else's under a new code.
func (d *Drafts) Save(ctx context.Context, r SaveRequest) (Saved, error) {
	svc := r.Service
	if svc.Prefix != "" {
		return Saved{}, gateway.Errorf(gateway.ENotFound, "error.service_not_found", nil)
	}
	now := d.cfg.Now()
	dr := gateway.Draft{Service: svc.ID, Values: gateway.DraftValues(svc, r.Values), Step: max(r.Step, 0), Started: r.Started, SavedAt: now.UTC()}
	for name := range r.Principal.Prefilled(svc) {
		delete(dr.Values, name) // the sign-in gives it again
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	if owner := resident(r.Principal); owner != "" {
		dr.Owner = owner
		if DraftIDPattern.MatchString(r.ID) {
			if old, err := d.open(sctx, owner, r.ID); err == nil && old.Service == svc.ID {
				dr.ID, dr.Point = r.ID, old.Point
			}
		}
		if dr.ID == "" {
			dr.ID = newDraftID()
		}
		dr.ExpiresAt = now.Add(d.cfg.TTL).UTC()
		if err := d.put(sctx, userIndex(owner), dr.ID, dr, d.cfg.TTL, d.cfg.PerPerson); err != nil {
			return Saved{}, err
		}
		return Saved{Draft: dr}, nil
	}
	if r.Browser == "" {
		return Saved{}, &gateway.Error{Code: gateway.ETooMany, Message: gateway.Message{ID: "error.draft_limit"}, Cause: ErrDraftLimit}
	}
	code := gateway.NewDraftCode()
	dr.ExpiresAt = now.Add(d.cfg.CodeTTL).UTC()
	if err := d.put(sctx, "browser:"+r.Browser, code, dr, d.cfg.CodeTTL, d.cfg.PerBrowser); err != nil {
		return Saved{}, err
	}
	return Saved{Draft: dr, Code: code}, nil
}

// put writes a draft within the size and count bounds: under its id (a
// signed-in resident's), or, when dr has none, under a code, sealed.
func (d *Drafts) put(ctx context.Context, owner, idOrCode string, dr gateway.Draft, ttl time.Duration, limit int) error {
	b, err := json.Marshal(dr)
	if err != nil {
		return gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	if len(b) > d.cfg.MaxBytes {
		return &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "drafts.error.too_large"}, Cause: ErrDraftTooLarge}
	}
	id := idOrCode
	if dr.ID == "" {
		id, b = codeID(idOrCode), sealCode(idOrCode, b)
	}
	ok, err := d.store.SaveDraft(ctx, owner, id, b, ttl, limit)
	if err != nil {
		return err
	}
	if !ok {
		return &gateway.Error{Code: gateway.ETooMany, Message: gateway.Message{ID: "drafts.error.limit"}, Cause: ErrDraftLimit}
	}
	return nil
}

func newDraftID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var errNoDraft = gateway.Errorf(gateway.ENotFound, "drafts.error.not_found", nil)

// open reads owner's draft id; ENotFound for one that is not theirs.
func (d *Drafts) open(ctx context.Context, owner, id string) (gateway.Draft, error) {
	if owner == "" || !DraftIDPattern.MatchString(id) {
		return gateway.Draft{}, errNoDraft
	}
	b, err := d.store.LoadDraft(ctx, id)
	if err != nil {
		return gateway.Draft{}, err
	}
	var dr gateway.Draft
	if b == nil || json.Unmarshal(b, &dr) != nil || dr.Owner != owner || dr.ID != id {
		return gateway.Draft{}, errNoDraft
	}
	return dr, nil
}

// Open returns a signed-in resident's own draft id; ENotFound for anyone
// else's, as if it did not exist.
func (d *Drafts) Open(ctx context.Context, p *gateway.Principal, id string) (gateway.Draft, error) {
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	return d.open(sctx, resident(p), id)
}

// List returns a signed-in resident's drafts, the last saved first.
func (d *Drafts) List(ctx context.Context, p *gateway.Principal) ([]gateway.Draft, error) {
	owner := resident(p)
	if owner == "" {
		return nil, nil
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	raw, err := d.store.ListDrafts(sctx, userIndex(owner), d.cfg.PerPerson)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.Draft, 0, len(raw))
	for _, b := range raw {
		var dr gateway.Draft
		if json.Unmarshal(b, &dr) == nil && dr.Owner == owner {
			out = append(out, dr)
		}
	}
	slices.SortFunc(out, func(a, b gateway.Draft) int { return b.SavedAt.Compare(a.SavedAt) })
	return out, nil
}

// Delete deletes a signed-in resident's own draft (also once its form is
// sent); ENotFound for anyone else's.
func (d *Drafts) Delete(ctx context.Context, p *gateway.Principal, id string) error {
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	if _, err := d.open(sctx, resident(p), id); err != nil {
		return err
	}
	_, err := d.store.TakeDraft(sctx, id)
	return err
}

// Resume opens a draft by its code, once: the code is used up. A handover
// draft opens only for the signed-in person the desk recorded (EUnauth
// with ErrDraftSignIn when nobody is signed in, EForbidden for another
// person; the code then stays valid). For a signed-in resident the draft
// becomes theirs (listed on My pages; Draft.ID set) when their count
// allows; otherwise Draft.ID is "" and the caller keeps it for the browser.
func (d *Drafts) Resume(ctx context.Context, p *gateway.Principal, code string) (gateway.Draft, error) {
	code, ok := gateway.NormalizeDraftCode(code)
	if !ok {
		return gateway.Draft{}, gateway.Errorf(gateway.ENotFound, "drafts.error.code_unknown", nil)
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	b, err := d.store.LoadDraft(sctx, codeID(code))
	if err != nil {
		return gateway.Draft{}, err
	}
	var dr gateway.Draft
	if !decodeCode(code, b, &dr) {
		return gateway.Draft{}, gateway.Errorf(gateway.ENotFound, "drafts.error.code_unknown", nil)
	}
	owner := resident(p)
	if dr.For != "" {
		switch {
		case owner == "":
			return gateway.Draft{}, &gateway.Error{Code: gateway.EUnauth, Message: gateway.Message{ID: "drafts.error.sign_in_first"}, Cause: ErrDraftSignIn}
		case owner != dr.For:
			return gateway.Draft{}, gateway.Errorf(gateway.EForbidden, "drafts.error.other_person", nil)
		}
	}
	// Take it: of two browsers with the same code, one opens it.
	if b, err = d.store.TakeDraft(sctx, codeID(code)); err != nil {
		return gateway.Draft{}, err
	}
	if dr = (gateway.Draft{}); !decodeCode(code, b, &dr) {
		return gateway.Draft{}, gateway.Errorf(gateway.ENotFound, "drafts.error.code_unknown", nil)
	}
	dr.For = ""
	if owner == "" {
		return dr, nil
	}
	mine := dr
	mine.ID, mine.Owner = newDraftID(), owner
	mine.SavedAt, mine.ExpiresAt = d.cfg.Now().UTC(), d.cfg.Now().Add(d.cfg.TTL).UTC()
	if err := d.put(sctx, userIndex(owner), mine.ID, mine, d.cfg.TTL, d.cfg.PerPerson); err != nil {
		if !errors.Is(err, ErrDraftLimit) {
			d.log.Warn("resumed draft not kept under the resident", "error", err)
		}
		return dr, nil
	}
	return mine, nil
}

// HandOverRequest is a form started at the desk, for the visitor to finish
// at home.
type HandOverRequest struct {
	Service   *gateway.Service
	Principal *gateway.Principal // the staff member
	Point     servicepoint.Point
	// Personnummer is the visitor's, as staff typed it; reported under
	// PersonnummerName when it is missing or invalid.
	Personnummer, PersonnummerName string
	Values                         map[string][]string
	Started                        string
}

// HandOver keeps a form started at the desk under a new one-time code for
// the visitor whose personnummer staff recorded, and audits it. The
// service must take digital submissions (the visitor sends it themselves).
func (d *Drafts) HandOver(ctx context.Context, r HandOverRequest) (Saved, error) {
	p, svc := r.Principal, r.Service
	if p == nil || p.Machine || !p.HasRole(gateway.RoleStaff) {
		return Saved{}, gateway.Errorf(gateway.EForbidden, "desk.error.staff_only", nil)
	}
	if d.desk == nil || svc.Prefix != "" {
		return Saved{}, gateway.Errorf(gateway.ENotFound, "desk.error.off", nil)
	}
	if !svc.AllowsChannel(gateway.ChannelDigital) {
		return Saved{}, &gateway.Error{Code: gateway.EForbidden, Message: gateway.Message{ID: "error.channel_not_allowed",
			Data: map[string]any{"Channel": gateway.Message{ID: "usage.channel." + string(gateway.ChannelDigital)}}}}
	}
	now := d.cfg.Now()
	n, err := personnummer.ParseAt(r.Personnummer, now.In(d.cfg.Location))
	if err != nil {
		id := "desk.error.pnr_invalid"
		if r.Personnummer == "" {
			id = "desk.error.pnr_required"
		}
		return Saved{}, &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"},
			Fields: gateway.FieldErrors{r.PersonnummerName: {ID: id}}}
	}
	dr := gateway.Draft{Service: svc.ID, Values: gateway.DraftValues(svc, r.Values), Started: r.Started,
		For: personSubject(n), Point: r.Point.ID, SavedAt: now.UTC(), ExpiresAt: now.Add(d.cfg.CodeTTL).UTC()}
	for i := range svc.Fields {
		if f := &svc.Fields[i]; f.Prefill != "" {
			delete(dr.Values, f.Name) // the visitor's sign-in gives it
		}
	}
	code := gateway.NewDraftCode()
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	if err := d.put(sctx, "desk:"+p.Subject, code, dr, d.cfg.CodeTTL, d.cfg.PerDesk); err != nil {
		return Saved{}, err
	}
	e := servicepoint.AuditEntry{At: now.UTC().Format(time.RFC3339Nano), Actor: p.Subject, ActorName: p.Name, ServicePoint: r.Point.ID,
		Subject: n.Masked(), Action: servicepoint.ActionHandedOver, Service: svc.ID}
	if err := d.desk.AppendAudit(sctx, e); err != nil {
		// No audit, no handover: the code is withdrawn.
		_, _ = d.store.TakeDraft(context.WithoutCancel(sctx), codeID(code))
		d.log.Error("audit entry not written", "action", e.Action, "service_point", e.ServicePoint, "error", err)
		return Saved{}, err
	}
	// The service point's own statistics: a visit where the visitor was
	// shown the e-service, which they finish themselves (their submission
	// then counts as digital).
	day := now.In(d.cfg.Location).Format(time.DateOnly)
	if err := d.desk.AddDeskContact(sctx, day, r.Point.ID, svc.ID, string(servicepoint.ContactVisit), string(servicepoint.OutcomeShownSelfService)); err != nil {
		d.log.Warn("desk contact of a handover", "service_point", r.Point.ID, "error", err)
	}
	return Saved{Draft: dr, Code: code}, nil
}
