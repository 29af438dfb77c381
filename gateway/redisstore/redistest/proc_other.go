//go:build !unix

package redistest

import (
	"os"
	"os/exec"
)

var (
	killSignal   = os.Kill
	termSignal   = os.Kill // no SIGTERM here; Stop kills
	pauseSignal  os.Signal // no SIGSTOP here: Pause does nothing
	resumeSignal os.Signal
)

func setProcessGroup(*exec.Cmd) {}

func (p *process) signalGroup(sig os.Signal) {
	if p.cmd.Process != nil && sig != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}
