// Package dockertest runs a real dockerd for end-to-end tests, so that what
// graphprobe predicts and lays out on disk can be checked against the
// engine it speaks for rather than against our reading of its source.
//
// The engine is Debian's docker.io 20.10 with its containerd and runc,
// fetched once with apt-get download and unpacked with dpkg -x into a cache
// outside the repository (Ensure); nothing is installed on the host.
//
// A daemon (Start) is private to its test in every way that matters for a
// host that may run a real Docker:
//   - its data-root, exec-root, pidfile, socket, daemon.json, trust key and
//     the docker CLI's config live in directories the test owns;
//   - it runs in its own mount namespace with a private tmpfs on /run, so
//     the plugin directory that 20.10 hard-codes (/run/docker/plugins) and
//     containerd's shim sockets never reach the host, and every mount it
//     makes is dropped with the namespace even if the test binary is killed;
//   - it runs in its own network namespace with only a loopback device that
//     is down, and with --iptables=false --bridge=none, so it can send no
//     traffic anywhere; images come from docker import of local tarballs.
//
// Stop (also registered with t.Cleanup) ends dockerd with SIGTERM, then
// SIGKILL after a grace period, and fails the test when dockerd left mounts
// under its data-root or exec-root after a clean exit, left processes
// behind, or created /etc/docker or /run/docker on the host.
package dockertest
