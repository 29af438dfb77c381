package httpapi_test

// The built-in catalog the tests load has a service routed by e-mail.
import _ "github.com/kommun/servicegateway/services/connectors/email"
