//go:build unix

package redistest

import (
	"os/exec"
	"syscall"
)

var (
	killSignal   = syscall.SIGKILL
	termSignal   = syscall.SIGTERM
	pauseSignal  = syscall.SIGSTOP
	resumeSignal = syscall.SIGCONT
)

// setProcessGroup puts the server in its own process group, so a signal
// reaches it and anything it forks (e.g. an AOF rewrite child).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup signals the server's process group.
func (p *process) signalGroup(sig syscall.Signal) {
	if p.cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}
