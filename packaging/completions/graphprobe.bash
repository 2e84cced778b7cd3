# bash completion for graphprobe(1): commands, each command's flags, flag
# values (formats, drivers, bench depths, strategies, files, directories)
# and positional arguments. Works with or without the bash-completion
# package; installed as /usr/share/bash-completion/completions/graphprobe.

_graphprobe() {
	local cur prev cmd
	local commands="probe select bench drivers capture matrix version help"
	# BEGIN generated values (generated from drivers.Info, the release table and the output formats: go generate ./internal/gentables)
	local drivers="overlay2 fuse-overlayfs btrfs zfs aufs overlay devicemapper vfs"
	# Containerd snapshotter names that --driver accepts for their graph driver.
	local snapshotters="overlayfs native devmapper"
	# One Docker release per change of its storage rules.
	local releases="17.03.2 18.09.9 20.10.24 23.0.6 24.0.9 25.0.5 29.0.0"
	local formats="text json yaml"
	# END generated values
	local common="--format --data-root --config --root-prefix --docker-version"

	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	# "=" is a word break: --format=js arrives as "--format" "=" "js".
	if [[ $cur == "=" ]]; then
		cur=
	elif [[ $prev == "=" ]] && ((COMP_CWORD >= 2)); then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi

	if ((COMP_CWORD == 1)); then
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "--help --version" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
		fi
		return 0
	fi
	cmd=${COMP_WORDS[1]}

	case $prev in
	--format)
		mapfile -t COMPREPLY < <(compgen -W "$formats" -- "$cur")
		return 0
		;;
	--bench)
		if [[ $cmd == bench ]]; then
			mapfile -t COMPREPLY < <(compgen -W "quick full" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "quick full off" -- "$cur")
		fi
		return 0
		;;
	--strategy)
		mapfile -t COMPREPLY < <(compgen -W "priority fastest" -- "$cur")
		return 0
		;;
	--image-store)
		mapfile -t COMPREPLY < <(compgen -W "graphdriver containerd default" -- "$cur")
		return 0
		;;
	--driver)
		mapfile -t COMPREPLY < <(compgen -W "$drivers $snapshotters" -- "$cur")
		return 0
		;;
	--docker-version)
		mapfile -t COMPREPLY < <(compgen -W "$releases" -- "$cur")
		return 0
		;;
	--data-root | --root-prefix | --state-dir)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return 0
		;;
	--config | --policy | --benchstat | --lock-file | --expect | --write-expect)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0
		;;
	--lock-timeout)
		return 0
		;;
	esac

	local flags
	case $cmd in
	probe) flags="$common --load-modules" ;;
	select) flags="$common --dry-run --driver --policy --bench --strategy --image-store --force --no-load-modules --lock-file --lock-timeout --state-dir --benchstat" ;;
	bench) flags="$common --bench --policy --no-load-modules --benchstat" ;;
	drivers | version) flags="--format" ;;
	capture) flags="--data-root --config --format" ;;
	matrix) flags="--docker-version --expect --write-expect --format" ;;
	help)
		((COMP_CWORD == 2)) && mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
		return 0
		;;
	*) return 0 ;;
	esac

	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$flags --help" -- "$cur")
		return 0
	fi

	# Positional arguments.
	case $cmd in
	bench)
		mapfile -t COMPREPLY < <(compgen -W "$drivers" -- "$cur")
		;;
	capture | matrix)
		# A directory, or a .tar.gz capture.
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		;;
	esac
	return 0
}

complete -F _graphprobe graphprobe
