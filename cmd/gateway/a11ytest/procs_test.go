package a11ytest

import (
	"os"
	"testing"

	"github.com/kommun/servicegateway/cmd/gateway/internal/proctest"
)

// The real processes: the gateway and casesim binaries, built once per
// test binary (cmd/gateway/internal/proctest).

type proc = proctest.Proc

func binaries(t *testing.T) (gatewayBin, casesimBin string) { return proctest.Binaries(t) }

func start(t *testing.T, bin string, env map[string]string) *proc {
	t.Helper()
	return proctest.Start(t, bin, env)
}

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.RemoveBinaries()
	os.Exit(code)
}
