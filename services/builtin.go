package services

import "embed"

// Builtin holds the example services shipped with the gateway, one folder per
// department. GATEWAY_SERVICES_DIR replaces them with a folder on disk.
//
//go:embed */*/*.toml
var Builtin embed.FS
