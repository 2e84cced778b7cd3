// Package nsthread runs work on a fresh OS thread that is in the caller's
// mount namespace and has a filesystem context (working directory) of its
// own, and throws the thread away afterwards.
//
// Drivers need this in two places. A mount whose data does not fit in a
// page is made with paths relative to the driver's home, which takes a
// chdir: done on a shared thread it would move every goroutine's working
// directory, so it is done on a thread that unshared CLONE_FS and that Go
// never reuses. And work that outlives the call (a tar stream read from a
// mounted layer, a fuse-overlayfs daemon) runs on threads other than the
// caller's: when the caller is on a hostsys.MountNS thread, those threads are
// not in its namespace and would see empty mount points. A thread made here
// joins the caller's namespace first, so it sees exactly what the caller
// sees, with no helper process forked.
package nsthread
