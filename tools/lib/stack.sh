# tools/lib/stack.sh - start and stop a private repoflow stack: a config
# file, the API, the worker, nginx on a free port, all state in one
# directory. Shared by tools/run (a developer's stack) and tests/t/lib.sh
# (one stack per test script), so that both run the same thing.
#
# Sourced by bash; defines functions and changes nothing by itself.
# Functions that start a process leave its pid in RF_PID and do not run in
# a subshell, so the process stays a child of the caller (which can `wait`
# for it and stop it by pid).
#
# Needs: RF_SRCDIR (the source tree) and RF_BUILDDIR (the build tree).

# The nginx template, shared with the tests.
rf_nginx_template() { printf '%s\n' "$RF_SRCDIR/tests/t/nginx.conf.in"; }

# rf_write_conf FILE STATE_DIR [key=value ...]
# Write a repoflow.conf with all paths inside STATE_DIR and the given keys
# set (a key given twice keeps the last value).
rf_write_conf()
{
	local file=$1 dir=$2 kv key
	shift 2
	local -A val=(
		[database]="$dir/repoflow.db"
		[mirror_dir]="$dir/repos"
		[api_socket]="$dir/api.sock"
		[wake_socket]="$dir/wake.sock"
		[committer_name]="repoflow"
		[committer_email]="repoflow@localhost"
		[events_publish_socket]="$dir/nchan.sock"
	)
	local -a order=(database mirror_dir api_socket wake_socket committer_name committer_email
		events_publish_socket)
	for kv in "$@"; do
		key=${kv%%=*}
		key=${key// /}
		[ -n "${val[$key]+set}" ] || order+=("$key")
		val[$key]=${kv#*=}
	done
	{
		echo "# repoflow configuration written by tools/lib/stack.sh"
		for key in "${order[@]}"; do
			printf '%s = %s\n' "$key" "${val[$key]}"
		done
	} >"$file"
}

# rf_conf_get FILE KEY: the value of KEY in a config file (empty if unset).
rf_conf_get()
{
	sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1" | tail -n 1
}

# rf_port_in_use PORT: true when something listens on TCP PORT.
rf_port_in_use()
{
	local hex
	hex=$(printf '%04X' "$1")
	# Column 2 is local address:port in hex, column 4 the state (0A = LISTEN).
	awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 }
		END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# rf_pick_port: print a TCP port nobody listens on (20000-59999).
rf_pick_port()
{
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if ! rf_port_in_use "$p"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# rf_render_nginx OUT STATE_DIR PORT API_SOCKET WEB_ROOT
rf_render_nginx()
{
	local out=$1 dir=$2 port=$3 sock=$4 web=$5
	mkdir -p "$dir/nginx" "$dir/log" || return 1
	# nchan's publisher socket: nginx without a master process leaves the
	# file behind when it is killed, and would then fail to bind it.
	rm -f "$dir/nchan.sock"
	sed -e "s|@STATE_DIR@|$dir|g" -e "s|@PORT@|$port|g" \
	    -e "s|@API_SOCKET@|$sock|g" -e "s|@WEB_ROOT@|$web|g" \
	    "$(rf_nginx_template)" >"$out"
}

# rf_alive PID: true while PID runs (and is not a zombie).
rf_alive()
{
	local state
	[ -n "$1" ] || return 1
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# rf_children PID: the pids of PID's direct children, one a line.
rf_children()
{
	cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d'
}

# rf_wait_file PATH TIMEOUT_S [PID]: wait until PATH exists; fail early if
# PID (the process that should create it) died.
rf_wait_file()
{
	local path=$1 deadline=$((SECONDS + $2)) pid=${3:-}
	while [ ! -e "$path" ]; do
		if [ -n "$pid" ] && ! rf_alive "$pid"; then
			return 1
		fi
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.05
	done
}

# rf_wait_http URL TIMEOUT_S [PID...]: wait until URL answers 200; fail
# early when one of the PIDs died.
rf_wait_http()
{
	local url=$1 deadline=$((SECONDS + $2)) pid code
	shift 2
	while :; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || code=
		[ "$code" = 200 ] && return 0
		for pid in "$@"; do
			rf_alive "$pid" || return 1
		done
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

# rf_stop PID [TIMEOUT_S]: SIGTERM, wait up to TIMEOUT_S (default 10),
# then SIGKILL; reap it when it is our child.
rf_stop()
{
	local pid=$1 deadline=$((SECONDS + ${2:-10}))
	[ -n "$pid" ] || return 0
	if rf_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		while rf_alive "$pid" && [ $SECONDS -lt $deadline ]; do
			sleep 0.05
		done
		if rf_alive "$pid"; then
			echo "repoflow: pid $pid ignored SIGTERM; sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null
		fi
	fi
	wait "$pid" 2>/dev/null
	return 0
}

# rf_start_api CONF LOG: the FastCGI responder on the conf's api_socket.
rf_start_api()
{
	local conf=$1 log=$2 sock
	sock=$(rf_conf_get "$conf" api_socket)
	rm -f "$sock"
	"$RF_BUILDDIR/repoflow-api" --config "$conf" >>"$log" 2>&1 </dev/null &
	RF_PID=$!
	rf_wait_file "$sock" 10 "$RF_PID"
}

# rf_start_worker_activated CONF LOG: the worker under tools/socket-activate,
# started on the first datagram to the conf's wake_socket, like systemd
# would (exits when idle, started again by the next wake-up).
rf_start_worker_activated()
{
	local conf=$1 log=$2 sock
	sock=$(rf_conf_get "$conf" wake_socket)
	rm -f "$sock"
	"$RF_BUILDDIR/tools/socket-activate" --datagram "$sock" -- \
		"$RF_BUILDDIR/repoflow-worker" --config "$conf" >>"$log" 2>&1 </dev/null &
	RF_PID=$!
	rf_wait_file "$sock" 10 "$RF_PID"
}

# rf_start_worker_foreground CONF LOG: the worker itself, binding the
# conf's wake_socket, without idle exit.
rf_start_worker_foreground()
{
	local conf=$1 log=$2 sock
	sock=$(rf_conf_get "$conf" wake_socket)
	"$RF_BUILDDIR/repoflow-worker" --config "$conf" --foreground >>"$log" 2>&1 </dev/null &
	RF_PID=$!
}

# rf_start_nginx NGINX_CONF STATE_DIR LOG: nginx in the foreground.
rf_start_nginx()
{
	local conf=$1 dir=$2 log=$3
	nginx -p "$dir/nginx" -e "$dir/log/nginx-error.log" -c "$conf" >>"$log" 2>&1 </dev/null &
	RF_PID=$!
}

# rf_start_web STATE_DIR CONF LOGDIR WEB_ROOT [TRIES]: render nginx.conf
# on a free port and start nginx; retries on another port when the one it
# picked was taken in between. Sets RF_PORT and RF_PID; fails when nginx
# does not answer /v1/health.
rf_start_web()
{
	local dir=$1 conf=$2 logdir=$3 web=$4 tries=${5:-5} sock port i
	sock=$(rf_conf_get "$conf" api_socket)
	for i in $(seq 1 "$tries"); do
		port=${RF_FIXED_PORT:-$(rf_pick_port)} || return 1
		rf_render_nginx "$dir/nginx.conf" "$dir" "$port" "$sock" "$web" || return 1
		rf_start_nginx "$dir/nginx.conf" "$dir" "$logdir/nginx.log"
		if rf_wait_http "http://127.0.0.1:$port/v1/health" 15 "$RF_PID"; then
			RF_PORT=$port
			return 0
		fi
		rf_stop "$RF_PID" 2
		# A fixed port that does not work is not retried elsewhere.
		[ -z "${RF_FIXED_PORT:-}" ] || return 1
		grep -q 'Address already in use' "$logdir/nginx.log" "$dir/log/nginx-error.log" 2>/dev/null || return 1
	done
	return 1
}

# rf_git ARGS...: the git CLI with a fixed identity and no user or system
# configuration, so remotes built by tests and the demo are the same
# everywhere.
rf_git()
{
	env HOME="${RF_GIT_HOME:-/nonexistent}" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null \
		GIT_AUTHOR_NAME="A U Thor" GIT_AUTHOR_EMAIL="author@example.com" \
		GIT_COMMITTER_NAME="C O Mitter" GIT_COMMITTER_EMAIL="committer@example.com" \
		GIT_AUTHOR_DATE="${RF_GIT_DATE:-1700000000 +0000}" \
		GIT_COMMITTER_DATE="${RF_GIT_DATE:-1700000000 +0000}" \
		git "$@"
}

# rf_make_stack_remote BARE SCRATCH: a bare repository at BARE with `main`
# (two commits) and a stack feat-1 <- feat-2 <- feat-3 (each one commit on
# top of the one before), built in the clone SCRATCH and pushed.
rf_make_stack_remote()
{
	local bare=$1 work=$2 t=1700000000 b prev
	rf_git init -q --bare -b main "$bare" &&
	rf_git init -q -b main "$work" &&
	(
		cd "$work" &&
		printf 'demo project\n' >README &&
		rf_git add README &&
		RF_GIT_DATE="$t +0000" rf_git commit -q -m "Initial commit" &&
		printf 'int main(void) { return 0; }\n' >main.c &&
		rf_git add main.c &&
		RF_GIT_DATE="$((t + 60)) +0000" rf_git commit -q -m "Add main.c" &&
		prev=main &&
		for b in 1 2 3; do
			rf_git checkout -q -b "feat-$b" "$prev" &&
			printf 'feature %s\n' "$b" >"feat-$b.txt" &&
			rf_git add "feat-$b.txt" &&
			RF_GIT_DATE="$((t + 60 + b * 60)) +0000" rf_git commit -q -m "Add feature $b" &&
			prev="feat-$b" || return 1
		done &&
		rf_git remote add origin "$bare" &&
		rf_git push -q origin main feat-1 feat-2 feat-3
	)
}
