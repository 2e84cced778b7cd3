// Package debapt fetches Debian packages for the tests that need software
// this machine does not run (dockerd releases, kernels) without touching
// the system's package state: apt-get and apt-cache run on a private
// sources list, package lists, archive cache and an empty dpkg status, all
// under one directory of a cache outside the tree.
package debapt
