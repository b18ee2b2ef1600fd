package backup

import "syscall"

// lowerThreadPriority makes the calling OS thread yield the CPU to the node's other work (nice 10). On
// Linux a thread is scheduled on its own, so this changes this thread alone.
func lowerThreadPriority() {
	syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), backgroundNice)
}
