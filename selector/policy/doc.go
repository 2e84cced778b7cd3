// Package policy reads the YAML policy that tells graphprobe select which
// storage drivers it may choose and how to rank them.
//
// A policy is a site's standing decision, read unattended at every boot, so
// it is parsed strictly: an unknown key, a wrong type, a duplicate key, a
// key without a value, an anchor or alias, a second document, a mapping of
// more than 64 keys, nesting past MaxDepth or a file over MaxSize is an
// error naming the line, column and key. A typo must stop the run, not
// silently fall back to a default. yaml.v3 decodes the file (KnownFields)
// into a struct whose field types check their own values.
//
// Every key is optional; an empty file is the empty policy, and an unset
// field leaves the choice to the command-line flag or graphprobe's default.
//
//	version: 1                  # the only version there is
//	strategy: priority          # priority (Docker's order) | fastest (benchmarks decide)
//	priority: [overlay2, btrfs] # replaces Docker's priority list; drivers not named are not chosen
//	exclude: [vfs]              # never chosen, whatever the order
//	imageStore: graphdriver     # graphdriver | containerd | default (Docker 29+ decides)
//	benchmark:                  # sizes of select's benchmark suite
//	  budget: 45s               # wall-clock limit for all benchmarks (1s to 1h)
//	  chainLengths: [1, 8, 32]  # layers created in a chain on the image (1 to 128)
//	  mountDepths: [1, 20, 128] # image depths a new container starts on: create + mount (1 to 128)
//	  copyUpSizes: [4KiB, 1MiB, 64MiB]  # first-write file sizes (1 B to 1 GiB; B, KiB, MiB, GiB)
//	  smallFiles: 2000          # files created and deleted (1 to 1000000)
//	  statDepths: [1, 20]       # layers stat and open look through (1 to 128)
//	  readdirSize: 1000         # entries merged across layers (1 to 1000000)
//	  imageFiles: 1000          # files of the image the layer items build on (1 to 1000000)
//	  samples: 5                # measured samples per item (1 to 100)
//	weights:                    # for strategy fastest; a benchmark left out weighs 0
//	  create: 1
//	  mount: 1
//	  copyup: 2
//	  smallfiles: 1
//	  stat: 1
//	  readdir: 0.5
//	  inodes: 0.5
//	  bytes: 0.5
//	storageOpts:                # storage-opts written for the chosen driver
//	  zfs: [zfs.fsname=tank/docker]
//
// Driver names are the ones Docker uses (overlay2, fuse-overlayfs, btrfs,
// zfs, aufs, overlay, devicemapper, vfs); a storage option must belong to
// the driver it is listed under, because dockerd refuses another driver's
// options. examples/policy.yaml at the repository's root is the complete,
// documented example (the README and the man page show it, the tests run
// it); testdata/policy/example.yaml is a parser fixture, not a policy to
// copy: its overlay2.size works only on xfs mounted with pquota.
package policy
