// Package examples runs the provisioning examples under examples/ the way
// their users would: the POSIX provisioning script against fixture hosts for
// every exit code of graphprobe select, the Ansible tasks in a real
// ansible-playbook run, the cloud-config through cloud-init's schema, and
// the CI workflow through actionlint and its matrix step through bash.
//
// Tests that need a tool go through testutil.RequiresTool: they skip, or
// fail under GRAPHPROBE_REQUIRE_ROOT=1 (`make test` installs the tools).
package examples
