package redistest

import "syscall"

// childProcAttr makes a test's redis-server die with the test binary, even
// when it is killed by a timeout.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
