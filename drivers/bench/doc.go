// Package bench is the benchmark suite graphprobe runs on the storage
// drivers a host can initialise, to choose between them by speed and cost
// (select's fastest strategy, the bench command).
//
// It lives beside the drivers it measures, not in selector, because every
// item is a series of real syscalls on a driver's home (create, mount,
// copy-up, stat, statfs): selector decides, bench measures. The caller
// initialises the drivers and says where they run (Request.Do, a private
// mount namespace's thread); Run times every item for every driver,
// interleaved so that a noisy machine disturbs all drivers alike, and
// returns per-driver medians and spreads and the samples as Go benchmark
// lines that benchstat reads.
//
// The drivertest package's benchmarks are a different thing: go test
// benchmarks of one driver at a time, for the project's own figures.
package bench
