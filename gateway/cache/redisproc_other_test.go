//go:build !linux

package cache

import "syscall"

func childProcAttr() *syscall.SysProcAttr { return nil }
