package mlflowtest

import "syscall"

// setParentDeathSignal has the kernel send SIGTERM to the child when the
// thread that started it exits; Go's runtime keeps its threads for the life
// of the process unless a goroutine locked to one exits, which the harness
// never does.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }
