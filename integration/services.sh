# Backing services for the tests, on loopback and private ports.
# Source this file, call svc_up NAME... (postgres, s3, redis) and svc_down from an
# EXIT trap. It installs what is missing (apt, go install) and exports the
# DFMS_TEST_* variables that integration/testenv reads. Credentials are
# random per run and never leave the machine.
#
# Works as root (CI, the dev container) on Debian 12; PostgreSQL 15 runs as
# a throwaway cluster owned by the postgres user.

SVC=${DFMS_SVC_DIR:-/tmp/dfms-svc.$$}
SVC_BIN=${DFMS_SVC_BIN:-${HOME:-/root}/.cache/dfms-svc-bin}
PGPORT=${DFMS_PGPORT:-55432}
S3_PORT=${DFMS_S3_PORT:-57070}
VGW_VER=v1.8.0
mkdir -p "$SVC" "$SVC_BIN"

_log() { printf '[services] %s\n' "$*" >&2; }
_rand() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

_apt_updated=
apt_install() { # apt_install PKG... (only what is missing)
	local missing=() p
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	_log "installing ${missing[*]}"
	[ -n "$_apt_updated" ] || { apt-get update -q >/dev/null && _apt_updated=1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- PostgreSQL: throwaway cluster on 127.0.0.1:$PGPORT ----
postgres_up() {
	local bin
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	if [ -z "$bin" ]; then
		apt_install postgresql postgresql-contrib
		bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
	fi
	_port_free "$PGPORT" || { _log "port $PGPORT is taken"; return 1; }
	local root=$SVC/pg pw
	pw=$(_rand)
	rm -rf "$root"; mkdir -p "$root"; chown postgres:postgres "$root"
	# initdb refuses root; every file it or the server writes must belong to postgres.
	runuser -u postgres -- sh -c "umask 077; echo '$pw' > '$root/pw' && '$bin/initdb' -D '$root/data' -U postgres \
		--auth-local=trust --auth-host=scram-sha-256 --pwfile='$root/pw' -E UTF8 --locale=C.UTF-8 >'$root/initdb.log'" || return 1
	runuser -u postgres -- "$bin/pg_ctl" -D "$root/data" -l "$root/log" -w -t 60 \
		-o "-p $PGPORT -c listen_addresses=127.0.0.1 -k $root -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
		start >/dev/null || { cat "$root/log" >&2; return 1; }
	export DFMS_TEST_POSTGRES="postgres://postgres:$pw@127.0.0.1:$PGPORT/postgres?sslmode=disable"
	_PG_BIN=$bin
	_log "postgres on 127.0.0.1:$PGPORT"
}
postgres_down() {
	[ -n "${_PG_BIN:-}" ] && [ -f "$SVC/pg/data/postmaster.pid" ] &&
		runuser -u postgres -- "$_PG_BIN/pg_ctl" -D "$SVC/pg/data" -m fast -w stop >/dev/null 2>&1
	rm -rf "$SVC/pg"
}

# ---- S3: versitygw (Apache-2.0), posix backend, 127.0.0.1:$S3_PORT ----
s3_up() {
	local bin=$SVC_BIN/versitygw-$VGW_VER/versitygw ak sk i
	if [ ! -x "$bin" ]; then
		_log "building versitygw $VGW_VER (first run on this machine: about a minute)"
		GOBIN=$(dirname "$bin") go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VER" || return 1
	fi
	_port_free "$S3_PORT" || { _log "port $S3_PORT is taken"; return 1; }
	ak=$(_rand); sk=$(_rand)
	rm -rf "$SVC/s3"; mkdir -p "$SVC/s3/data"
	ROOT_ACCESS_KEY=$ak ROOT_SECRET_KEY=$sk nohup "$bin" --port "127.0.0.1:$S3_PORT" --quiet posix "$SVC/s3/data" >"$SVC/s3/log" 2>&1 &
	echo $! >"$SVC/s3/pid"
	for ((i = 0; i < 300; i++)); do
		_port_free "$S3_PORT" || break
		sleep 0.05
	done
	_port_free "$S3_PORT" && { cat "$SVC/s3/log" >&2; return 1; }
	export DFMS_TEST_S3="s3://$ak:$sk@127.0.0.1:$S3_PORT/?secure=false"
	# The cluster tests start (and kill) S3 servers of their own.
	export DFMS_TEST_VERSITYGW=$bin
	_log "versitygw on 127.0.0.1:$S3_PORT"
}
s3_down() { _stop_pidfile "$SVC/s3/pid"; rm -rf "$SVC/s3"; }

_stop_pidfile() { # SIGTERM the pid in $1, wait up to 10 s, then SIGKILL
	local f=$1 pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	kill "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
	for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
	rm -f "$f"
}

svc_up() {
	local s
	for s in "$@"; do "${s}_up" || { _log "$s failed to start"; return 1; }; done
	_SVC_STARTED="$*"
}
svc_down() {
	local s
	for s in ${_SVC_STARTED:-}; do "${s}_down" || true; done
	rm -rf "$SVC"
}

# ---- Redis: throwaway server on 127.0.0.1:$REDIS_PORT, with a password, persisting nothing ----
REDIS_PORT=${DFMS_REDIS_PORT:-56379}
redis_up() {
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server
	_port_free "$REDIS_PORT" || { _log "port $REDIS_PORT is taken"; return 1; }
	local root=$SVC/redis pw i
	pw=$(_rand)
	rm -rf "$root"; mkdir -p "$root"
	# --daemonize returns at once: poll until it answers. The package may
	# also have started a server of its own on 6379; this one is separate.
	redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save '' --appendonly no \
		--dir "$root" --pidfile "$root/pid" --logfile "$root/log" --requirepass "$pw" >/dev/null || return 1
	for ((i = 0; i < 200; i++)); do
		[ "$(REDISCLI_AUTH=$pw redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
		sleep 0.05
	done
	[ "$(REDISCLI_AUTH=$pw redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] ||
		{ cat "$root/log" >&2; return 1; }
	export DFMS_TEST_REDIS="redis://:$pw@127.0.0.1:$REDIS_PORT"
	_log "redis on 127.0.0.1:$REDIS_PORT"
}
redis_down() { _stop_pidfile "$SVC/redis/pid"; rm -rf "$SVC/redis"; }
