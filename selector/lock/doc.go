// Package lock keeps two graphprobe select runs on one host from deciding,
// benchmarking and writing daemon.json at the same time.
//
// The lock is flock(2) on a file (DefaultPath unless the caller names
// another), so the kernel releases it when its holder exits, however it
// exits: a killed run never leaves a stale lock behind. The holder writes
// its pid into the file, so that a waiter can say whom it waits for. The
// file is never removed: removing a flock file lets a third process lock a
// new file of the same name while a second still waits on the old one.
//
// /run/lock is writable by every user on many distributions, so the file is
// opened with O_NOFOLLOW and must be a regular file owned by the caller
// with one link: a planted symlink or hard link to a file elsewhere would
// otherwise have graphprobe (root) truncate it.
package lock
