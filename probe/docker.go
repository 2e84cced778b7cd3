package probe

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/graphprobe/graphprobe/version"
)

// RunCommand runs a host command with a timeout and returns its combined
// output; it is the default ExecFunc.
func RunCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	return defaultExec(ctx, name, args...)
}

// execTimeout bounds a host command. `dockerd --version` blocks in
// getrandom until the kernel's random pool is ready, which early at boot on
// a machine without an entropy source was seen taking well over 5 s.
const execTimeout = 30 * time.Second

func defaultExec(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, execTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

func (p *prober) readDocker() {
	d := &p.r.Docker
	if !p.h.Live() {
		if bin, ok := p.h.LookPath("dockerd"); ok {
			d.Binary = bin
		}
		if p.capture != nil {
			d.Version = p.capture.Docker.Version
			d.VersionOutput = p.capture.Docker.VersionOutput
		}
		return
	}
	d.Rootless = p.euid() != 0
	if bin, err := exec.LookPath("dockerd"); err == nil {
		d.Binary = bin
		out, err := p.opts.Exec(p.ctx, bin, "--version")
		if err != nil {
			p.warn("%s --version: %v", bin, err)
		} else {
			d.VersionOutput = strings.TrimSpace(string(out))
			if v, err := version.ParseDockerd(string(out)); err != nil {
				p.warn("%v", err)
			} else {
				d.Version = v.String()
			}
		}
	}
	sock := p.opts.DockerSocket
	if sock == "" {
		sock = "/var/run/docker.sock"
		if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
			sock = strings.TrimPrefix(h, "unix://")
		}
	}
	d.Socket = sock
	d.Running = pingDocker(sock, 500*time.Millisecond) == nil
}

// pingDocker asks the daemon's /_ping over its unix socket.
func pingDocker(sock string, timeout time.Duration) error {
	conn, err := net.DialTimeout("unix", sock, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")); err != nil {
		return err
	}
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(status, "HTTP/1.") || !strings.Contains(status, " 200") {
		return errors.New("unexpected answer: " + strings.TrimSpace(status))
	}
	return nil
}

// loadModules runs modprobe for the storage modules that are loadable but
// not loaded, as dockerd would at start (overlay and aufs: the drivers
// whose init loads their module). Only with --load-modules. The module,
// filesystem and kernel option come from the facts' rows.
func (p *prober) loadModules() {
	loaded := false
	for i := range factRows {
		m := &factRows[i]
		if m.name != FactOverlay && m.name != FactAufs {
			continue
		}
		if st, _ := p.mods.state(m.module, m.filesystem, m.config); st != ModuleLoadable {
			continue
		}
		if out, err := p.opts.Exec(p.ctx, "modprobe", m.module); err != nil {
			p.warn("modprobe %s: %v: %s", m.module, err, strings.TrimSpace(string(out)))
			continue
		}
		loaded = true
	}
	if loaded {
		cfg := p.mods.config
		p.readModules()
		p.mods.config = cfg
		// The parameters appear with the module: read them again, or the
		// report has none and the test mounts omit index=off, which
		// Docker and containerd pass when the parameter exists.
		p.readOverlayParams()
	}
}
