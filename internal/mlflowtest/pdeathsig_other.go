//go:build !linux

package mlflowtest

import "syscall"

// setParentDeathSignal: only Linux has a parent-death signal; elsewhere a
// server outlives a test binary that dies without its cleanups.
func setParentDeathSignal(*syscall.SysProcAttr) {}
