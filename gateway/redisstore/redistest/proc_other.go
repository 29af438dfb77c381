//go:build !unix

package redistest

import (
	"os"
	"os/exec"
)

var (
	killSignal = os.Kill
	termSignal = os.Kill // no SIGTERM here; Stop kills
)

func setProcessGroup(*exec.Cmd) {}

func (p *process) signalGroup(sig os.Signal) {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}
