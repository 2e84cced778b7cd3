// Package boot boots graphprobe's Debian package on a real Debian system:
// a bookworm root filesystem made by mmdebstrap (systemd as PID 1, Debian's
// docker.io, containerd and runc, Debian's kernel), with the .deb that
// scripts/package-deb.sh builds installed into it, run under qemu with a
// separate data-root disk. A test unit inside the guest collects what
// graphprobe-select.service did and what Docker started with, writes it to
// a results disk and powers off.
//
// The static checks of the unit (test/packaging) cannot show that the
// sandbox lets graphprobe mount, write daemon.json and modprobe, nor that
// systemd orders it before docker.service and starts Docker whatever it
// exits with: only a boot can.
//
// The image is built once and kept under the user cache dir (or
// $GRAPHPROBE_BOOT_CACHE), keyed by everything that goes into it, so that
// later runs only copy it. Nothing here uses the host's apt state:
// mmdebstrap is given its own sources.
package boot
