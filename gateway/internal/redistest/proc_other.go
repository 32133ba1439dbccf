//go:build !linux

package redistest

import "syscall"

func childProcAttr() *syscall.SysProcAttr { return nil }
