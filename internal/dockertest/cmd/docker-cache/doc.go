// Command docker-cache fills the engine cache that the end-to-end tests
// start dockerd from (see package dockertest), so that `make test` can
// fetch the packages once, before the tests run, rather than inside the
// first test that needs them. It prints the cache directory.
package main
