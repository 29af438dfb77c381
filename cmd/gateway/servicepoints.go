package main

import (
	"fmt"
	"os"

	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// loadServicePoints reads GATEWAY_SERVICE_POINTS_FILE, or returns the demo's
// built-in list (which includes sp-centrum, the development provider's
// staff persona's service point). A file with any problem stops the start.
func loadServicePoints(file string) (*servicepoint.Directory, error) {
	if file == "" {
		return servicepoint.Default(), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("GATEWAY_SERVICE_POINTS_FILE: %w", err)
	}
	d, err := servicepoint.Parse(b, file)
	if err != nil {
		return nil, fmt.Errorf("GATEWAY_SERVICE_POINTS_FILE:\n%w", err)
	}
	return d, nil
}
