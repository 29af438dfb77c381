package gateway

import "slices"

// Role is what a principal may do.
type Role string

// Roles.
const (
	RoleResident   Role = "resident"   // a person acting for themselves
	RoleStaff      Role = "staff"      // service-point staff, acting for visitors
	RoleDepartment Role = "department" // a department's system (machine client)
	RoleAdmin      Role = "admin"      // an administrator of the gateway
)

// Principal is who is making a request: a signed-in person or a machine
// client. A nil *Principal is an anonymous visitor.
type Principal struct {
	Subject      string    `json:"subject"`                 // stable id from the identity provider, or the client id
	Personnummer string    `json:"-"`                       // 12 digits, residents only; never logged or shown in full
	Name         string    `json:"name"`                    // display name
	Roles        []Role    `json:"roles"`                   // what the principal may do
	Assurance    Assurance `json:"assurance"`               // level of assurance of this sign-in
	Department   string    `json:"department,omitempty"`    // for department clients and department staff
	ServicePoint string    `json:"service_point,omitempty"` // for service-point staff
	Machine      bool      `json:"machine,omitempty"`       // a machine client, not a person
}

// HasRole reports whether p has the role; a nil principal has none.
func (p *Principal) HasRole(r Role) bool {
	return p != nil && slices.Contains(p.Roles, r)
}

// Satisfies reports whether p signed in at level a or higher. Anyone,
// signed in or not, satisfies AssuranceNone.
func (p *Principal) Satisfies(a Assurance) bool {
	if a == AssuranceNone {
		return true
	}
	return p != nil && !p.Machine && p.Assurance >= a
}

// DeskContactCount is one counter of contacts registered at a service
// point's desk: per point, service, channel and outcome.
type DeskContactCount struct {
	Point, Service, Channel, Outcome string
	Count                            int64
}

// Prefilled returns the values the sign-in gives for a service's prefilled
// fields: a person's personnummer and name. A machine client or an
// anonymous visitor gives none.
func (p *Principal) Prefilled(svc *Service) map[string]string {
	if p == nil || p.Machine {
		return nil
	}
	out := map[string]string{}
	for i := range svc.Fields {
		f := &svc.Fields[i]
		switch {
		case f.Prefill == PrefillPersonnummer && p.Personnummer != "":
			out[f.Name] = p.Personnummer
		case f.Prefill == PrefillName && p.Name != "":
			out[f.Name] = p.Name
		}
	}
	return out
}
