package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// ModuleState is where a kernel feature's module stands.
type ModuleState string

const (
	ModuleBuiltin  ModuleState = "builtin"
	ModuleLoaded   ModuleState = "loaded"
	ModuleLoadable ModuleState = "loadable"
	ModuleAbsent   ModuleState = "absent"
	ModuleUnknown  ModuleState = "unknown"
)

// Available reports whether the feature can be used, possibly after a
// modprobe (which dockerd does at start).
func (s ModuleState) Available() bool {
	return s == ModuleBuiltin || s == ModuleLoaded || s == ModuleLoadable
}

// moduleFacts gathers what the host says about its modules.
type moduleFacts struct {
	release    string
	fs         Filesystems // nil when /proc/filesystems was unreadable
	loaded     map[string]bool
	loadedErr  error
	builtin    map[string]bool
	builtinErr error
	dep        map[string]string
	depErr     error
	config     KernelConfig
	sysModule  func(name string) (present, initstate bool)
	live       bool
	// noModules is set when the kernel was built without loadable module
	// support (CONFIG_MODULES unset, or no /proc/modules on a live host):
	// whatever is not built in can never be loaded.
	noModules bool
}

// state decides a module's state with the evidence for it. fsName is the
// filesystem type the module registers ("" for non-filesystem modules);
// configName its CONFIG_ option.
func (m *moduleFacts) state(module, fsName, configName string) (ModuleState, string) {
	module = normModule(module)
	cfg := m.config.Tristate(configName)
	switch {
	case m.builtin[module]:
		return ModuleBuiltin, fmt.Sprintf("%s is listed in modules.builtin", module)
	case cfg == "y":
		return ModuleBuiltin, fmt.Sprintf("%s=y in the kernel config", configName)
	case m.loaded[module]:
		return ModuleLoaded, fmt.Sprintf("%s is listed in /proc/modules", module)
	}
	if m.noModules {
		if fsName != "" && m.fs[fsName] {
			return ModuleBuiltin, fmt.Sprintf("%s is registered in /proc/filesystems (the kernel has no loadable modules)", fsName)
		}
		if present, _ := m.sysModuleOK(module); present {
			return ModuleBuiltin, fmt.Sprintf("/sys/module/%s exists (the kernel has no loadable modules)", module)
		}
		return ModuleAbsent, fmt.Sprintf("%s is not built in, and the kernel has no loadable module support", module)
	}
	if present, initstate := m.sysModuleOK(module); present {
		// A builtin module with parameters has a /sys/module dir too, but
		// no initstate; a fixture keeps the dir only, and counts as loaded.
		if m.live && !initstate {
			return ModuleBuiltin, fmt.Sprintf("/sys/module/%s exists without initstate (built in)", module)
		}
		return ModuleLoaded, fmt.Sprintf("/sys/module/%s exists", module)
	}
	if fsName != "" && m.fs[fsName] {
		if m.loadedErr == nil {
			return ModuleBuiltin, fmt.Sprintf("%s is registered in /proc/filesystems with no module loaded", fsName)
		}
		return ModuleLoaded, fmt.Sprintf("%s is registered in /proc/filesystems", fsName)
	}
	if file, ok := m.dep[module]; ok {
		return ModuleLoadable, fmt.Sprintf("%s is in modules.dep (%s)", module, file)
	}
	switch {
	case m.depErr == nil:
		return ModuleAbsent, fmt.Sprintf("%s is neither built in, loaded nor in lib/modules/%s/modules.dep", module, m.release)
	case cfg == "n":
		return ModuleAbsent, fmt.Sprintf("%s is not set in the kernel config", configName)
	case errors.Is(m.depErr, fs.ErrNotExist) && (m.live || m.loadedErr == nil):
		// No modules directory on a host whose /proc/modules we read
		// (WSL, containers): nothing can be loaded, so what is not built
		// in or loaded is absent.
		return ModuleAbsent, fmt.Sprintf("%s is not built in or loaded, and lib/modules/%s does not exist, so no module can be loaded", module, m.release)
	}
	return ModuleUnknown, fmt.Sprintf("cannot tell whether %s is available: %v", module, shortErr(m.depErr))
}

func shortErr(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	return strings.TrimSpace(truncate(s, 200))
}

func (m *moduleFacts) sysModuleOK(name string) (bool, bool) {
	if m.sysModule == nil {
		return false, false
	}
	return m.sysModule(name)
}
