package open311_test

// The built-in field kinds, as cmd/gateway registers them.
import _ "github.com/kommun/servicegateway/services/fields/all"
