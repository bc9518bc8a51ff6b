# bash completion for cluster-run(1): its options, their values, `ctl` and
# its commands, and the server's own command line after "--".
# The option and command names are read from `cluster-run --help` and
# `cluster-run ctl --help` of the very binary being completed, so this
# file never lists them twice (and cannot fall behind a new option).

_cluster_run_names() { # PROGRAM: its long options
	"$@" --help 2>/dev/null | sed -nE 's/^ +(-[a-zA-Z], )?(--[a-z][a-z0-9-]*).*/\2/p'
}

_cluster_run_ctl_commands() {
	"$1" ctl --help 2>/dev/null |
		awk '/^Commands:/ { on = 1; next } /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }'
}

_cluster_run() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local prog=${COMP_WORDS[0]} i

	COMPREPLY=()
	# After "--": the server's command line.
	for ((i = 1; i < COMP_CWORD; i++)); do
		if [[ ${COMP_WORDS[i]} == -- ]]; then
			if ((i + 1 == COMP_CWORD)); then
				COMPREPLY=($(compgen -c -- "$cur"))
			elif declare -F _command_offset >/dev/null; then
				_command_offset $((i + 1))
			else
				COMPREPLY=($(compgen -f -- "$cur"))
			fi
			return
		fi
	done
	if [[ ${COMP_WORDS[1]} == ctl ]] && ((COMP_CWORD > 1)); then
		case $prev in
		--control) COMPREPLY=($(compgen -f -- "$cur")); return ;;
		scale) return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--control --json --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_cluster_run_ctl_commands "$prog")" -- "$cur"))
		fi
		return
	fi
	case $prev in
	--sched) COMPREPLY=($(compgen -W "rr none reuseport" -- "$cur")); return ;;
	--intercept) COMPREPLY=($(compgen -W "auto shim seccomp" -- "$cur")); return ;;
	--sticky)
		COMPREPLY=($(compgen -W "ip header:X-Forwarded-For cookie: query:sid" -- "$cur"))
		return ;;
	--graceful-signal)
		COMPREPLY=($(compgen -W "TERM QUIT INT HUP USR1 USR2 WINCH" -- "$cur"))
		return ;;
	--uid) COMPREPLY=($(compgen -u -- "$cur")); return ;;
	--gid) COMPREPLY=($(compgen -g -- "$cur")); return ;;
	--chdir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--control) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--health-check) COMPREPLY=($(compgen -W "http:/ tcp" -- "$cur")); return ;;
	-n|--workers|--kill-timeout|--reload-parallel|--ready-timeout|\
	--restart-delay|--restart-reset|--crash-limit|--env|--listen|--metrics|\
	--hang-timeout|--max-memory|--max-conns|--max-lifetime|\
	--health-interval|--health-timeout|--health-fails|--sticky-wait)
		return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_cluster_run_names "$prog") --" -- "$cur"))
	elif ((COMP_CWORD == 1)); then
		COMPREPLY=($(compgen -W "ctl" -- "$cur"))
	fi
}
complete -F _cluster_run cluster-run
