// Package selector turns a probe report into the storage driver the host's
// Docker engine will accept and run best.
//
// The decision is a pipeline whose steps are separate so that each can be
// tested alone and the pure ones run without root:
//
//   - Decide (pure) takes a probe report, the target Docker release and
//     the Inputs (--driver, --force, the policy as PolicyInputs makes it,
//     what daemon.json and dockerd's command line already say) and returns
//     the plan: every driver's eligibility with reasons and remedies in
//     priority order, the choice, any refusal (prior state, the configured
//     driver, dockerd's storage flags or DOCKER_DRIVER) and the daemon.json
//     change, following dockerd's own rules release by release.
//   - Prove initialises (and benchmarks) drivers on the live host, moving
//     to the next one when an init fails as dockerd does, and decides
//     again; it is skipped when the plan is already refused, unless the
//     fastest strategy could pick the driver that lifts the refusal (a
//     DOCKER_DRIVER or -s flag naming another eligible driver).
//   - Choose applies the strategy (fastest) on the measurements.
//   - Apply merges the change into daemon.json's bytes without writing.
//
// Run only sequences them and does the I/O (scanning dockerd's flags,
// writing daemon.json and its report); `graphprobe matrix` calls Decide.
package selector
