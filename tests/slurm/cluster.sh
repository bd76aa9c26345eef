#!/usr/bin/env bash
# -----------------------------------------------------------------------------
# Throw-away single-node SLURM cluster for CI / local integration tests.
#
# Usage (as root, Debian 12, no systemd needed):
#
#   eval "$(tests/slurm/cluster.sh start)"   # install (if needed) + start; exports SLURM_CONF
#   tests/slurm/cluster.sh status            # daemon pids, sinfo, squeue
#   tests/slurm/cluster.sh stop              # stop every daemon, no processes left behind
#   tests/slurm/cluster.sh logs              # tails of all daemon logs (stderr)
#
# In CI, register `stop` right away (e.g. `trap 'tests/slurm/cluster.sh stop' EXIT`):
# a failed `start` prints the log tails and exits 1 but leaves the daemons it
# already started running, for inspection.  `stop` is safe to run any time.
#
# `start` prints exactly one line on stdout (`export SLURM_CONF=...`); all
# progress/diagnostics go to stderr.  `start` is idempotent: daemons that are
# already running are left alone, state (MariaDB data, slurmctld state) is
# reused across stop/start cycles.
#
# Environment:
#   SLURM_TEST_DIR      state dir (configs, logs, pid files, DB)  [/tmp/vww-slurm]
#   SLURM_TEST_TIMEOUT  seconds to wait for each readiness check  [60]
#   SLURM_TEST_DB_PORT  TCP port of the private MariaDB (127.0.0.1) [3307]
#   SLURM_TEST_SKIP_INSTALL=1  never call apt-get
#
# Layout: daemons are started directly (setsid/daemonize, no systemd):
#   munged (user munge, default socket /run/munge/munge.socket.2)
#   mariadbd (root, datadir $STATE/mysql, TCP 127.0.0.1:$SLURM_TEST_DB_PORT)
#   slurmdbd -> slurmctld -> slurmd (all root, configs in $STATE/etc)
#
# Settings are chosen for sandboxes without cgroup management and without
# CAP_SYS_RESOURCE: proctrack/linuxproc, task/none, no ulimit raising.
# -----------------------------------------------------------------------------
set -euo pipefail

STATE=${SLURM_TEST_DIR:-/tmp/vww-slurm}
TIMEOUT=${SLURM_TEST_TIMEOUT:-60}
DB_PORT=${SLURM_TEST_DB_PORT:-3307}
CLUSTER=vwwtest
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_PASS=vwwtest-slurmdbd

ETC=$STATE/etc
LOG=$STATE/log
RUN=$STATE/run
SLURM_CONF_FILE=$ETC/slurm.conf
MYCNF=$ETC/my.cnf
MUNGE_DIR=$STATE/munge            # munged pid/log/seed (owned by user munge)
MUNGE_KEY=/etc/munge/munge.key    # Debian default location
MUNGE_SOCKET=/run/munge/munge.socket.2  # default socket -> no AuthInfo needed

PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

# Every client command below (sinfo, sacct, sacctmgr, srun...) reads this.
export SLURM_CONF=$SLURM_CONF_FILE

log() { printf '[slurm-cluster] %s\n' "$*" >&2; }

die() {
    log "ERROR: $*"
    dump_logs
    exit 1
}

# Print the tails of all daemon logs (to stderr) to make CI failures debuggable.
dump_logs() {
    local f
    for f in "$MUNGE_DIR/munged.log" "$LOG"/*.log; do
        [[ -f $f ]] || continue
        printf '\n----- tail of %s -----\n' "$f" >&2
        tail -n 25 "$f" >&2 || true
    done
}

# pid_alive PIDFILE -> 0 if the pid file names a live process
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# Daemons started so far ("name=pidfile"); wait_for fails fast if one dies.
STARTED=()

check_started() {
    local arg name pidfile
    for arg in "${STARTED[@]}"; do
        name=${arg%%=*} pidfile=${arg#*=}
        if [[ -s $pidfile ]] && ! pid_alive "$pidfile"; then
            die "$name (pid $(<"$pidfile")) has exited unexpectedly"
        fi
    done
}

# wait_for DESCRIPTION COMMAND... : retry COMMAND every 0.5 s until TIMEOUT.
wait_for() {
    local what=$1; shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        check_started
        ((SECONDS < deadline)) || die "timed out after ${TIMEOUT}s waiting for: $what"
        sleep 0.5
    done
}

# ----------------------------------------------------------------------------
# installation
# ----------------------------------------------------------------------------
install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    [[ ${SLURM_TEST_SKIP_INSTALL:-0} != 1 ]] \
        || die "missing packages (${missing[*]}) and SLURM_TEST_SKIP_INSTALL=1"
    log "installing ${missing[*]} (apt-get)"
    mkdir -p "$LOG"
    # policy-rc.d / no systemd: postinst scripts can't start services, which
    # is what we want -- we start everything ourselves below.
    {
        apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}"
    } >"$LOG/apt.log" 2>&1 || { tail -n 30 "$LOG/apt.log" >&2; die "apt-get failed"; }
}

# ----------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------
write_configs() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    # RealMemory must not exceed what slurmd detects, else the node is INVAL.
    mem_mb=$(awk '/^MemTotal:/ {m = int($2 / 1024); print (m > 2048 ? int(m * 0.9) : m - 256)}' /proc/meminfo)

    mkdir -p "$ETC" "$LOG" "$RUN" "$STATE/spool/ctld" "$STATE/spool/d"

    cat >"$SLURM_CONF_FILE" <<EOF
# Generated by tests/slurm/cluster.sh -- single-node test cluster
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
SwitchType=switch/none
# no cgroups in the sandbox
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
MinJobAge=300
# accounting (sacct is required by snakemake-executor-plugin-slurm)
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
AccountingStorageType=accounting_storage/slurmdbd
# Keep sbatch --comment (the Snakemake plugin puts the rule and wildcards there).
AccountingStoreFlags=job_comment
AccountingStorageHost=localhost
# files
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# nodes / partitions
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Default=YES Nodes=ALL MaxTime=INFINITE State=UP
EOF

    # slurmdbd finds slurmdbd.conf next to \$SLURM_CONF; must be 0600.
    (
        umask 077
        cat >"$ETC/slurmdbd.conf" <<EOF
# Generated by tests/slurm/cluster.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
    )
    chmod 600 "$ETC/slurmdbd.conf"

    # Private MariaDB instance (own datadir/socket/port; ignores /etc/mysql).
    cat >"$MYCNF" <<EOF
[mysqld]
user=root
datadir=$STATE/mysql
socket=$RUN/mysqld.sock
pid-file=$RUN/mariadb.pid
log-error=$LOG/mariadb.log
port=$DB_PORT
bind-address=127.0.0.1
skip-name-resolve
innodb_buffer_pool_size=128M
innodb_log_file_size=64M
innodb_lock_wait_timeout=900
max_allowed_packet=16M

[client]
user=root
socket=$RUN/mysqld.sock
EOF
}

# ----------------------------------------------------------------------------
# daemons
# ----------------------------------------------------------------------------
# NB: every daemon gets stdin/stdout/stderr redirected, otherwise
# `eval "$(cluster.sh start)"` (or a captured subprocess) would never see EOF.

start_munge() {
    if pid_alive "$MUNGE_DIR/munged.pid"; then
        log "munged already running (pid $(<"$MUNGE_DIR/munged.pid"))"; return
    fi
    if [[ -S $MUNGE_SOCKET ]] && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        log "WARNING: a foreign munged already serves $MUNGE_SOCKET; reusing it"; return
    fi
    if [[ ! -s $MUNGE_KEY ]]; then
        log "creating munge key $MUNGE_KEY"
        mkdir -p "$(dirname "$MUNGE_KEY")"
        mungekey --create --keyfile="$MUNGE_KEY" 2>/dev/null \
            || dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
    chown munge:munge "$MUNGE_KEY" "$(dirname "$MUNGE_KEY")"
    chmod 0400 "$MUNGE_KEY"
    chmod 0700 "$(dirname "$MUNGE_KEY")"
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 "$MUNGE_DIR"
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"   # stale leftovers
    STARTED+=("munged=$MUNGE_DIR/munged.pid")
    log "starting munged"
    runuser -u munge -- munged \
        --pid-file="$MUNGE_DIR/munged.pid" \
        --log-file="$MUNGE_DIR/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" \
        </dev/null >>"$LOG/munged-stdio.log" 2>&1 \
        || die "munged failed to start"
    wait_for "munge credential round trip" sh -c 'munge -n | unmunge'
}

# shellcheck disable=SC2120  # (called with args via wait_for)
db() { mariadb --defaults-file="$MYCNF" "$@"; }

start_mariadb() {
    if pid_alive "$RUN/mariadb.pid"; then
        log "mariadb already running (pid $(<"$RUN/mariadb.pid"))"; return
    fi
    if [[ ! -d $STATE/mysql/mysql ]]; then
        log "initialising MariaDB datadir $STATE/mysql"
        rm -rf "$STATE/mysql"
        mariadb-install-db --defaults-file="$MYCNF" --auth-root-authentication-method=socket \
            --skip-test-db >"$LOG/mariadb-install.log" 2>&1 \
            || { tail -n 30 "$LOG/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    fi
    log "starting mariadbd (127.0.0.1:$DB_PORT)"
    rm -f "$RUN/mariadb.pid"; STARTED+=("mariadbd=$RUN/mariadb.pid")
    setsid mariadbd --defaults-file="$MYCNF" </dev/null >>"$LOG/mariadb.log" 2>&1 &
    # Not a process-group leader here, so setsid does not fork: $! is mariadbd.
    # Record it now so early deaths are noticed (mariadbd rewrites it later).
    echo $! >"$RUN/mariadb.pid"
    wait_for "MariaDB to accept connections" db -e 'SELECT 1'
    # shellcheck disable=SC2119
    db <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
FLUSH PRIVILEGES;
EOF
}

start_slurmdbd() {
    if pid_alive "$RUN/slurmdbd.pid"; then
        log "slurmdbd already running (pid $(<"$RUN/slurmdbd.pid"))"; return
    fi
    log "starting slurmdbd"
    rm -f "$RUN/slurmdbd.pid"; STARTED+=("slurmdbd=$RUN/slurmdbd.pid")
    # slurmdbd daemonizes itself and writes PidFile.
    slurmdbd </dev/null >>"$LOG/slurmdbd-stdio.log" 2>&1 || die "slurmdbd failed to start"
    wait_for "slurmdbd to answer sacctmgr" sacctmgr -n -P list cluster
    # Register cluster (creates the root account/user association too).
    if [[ -z $(sacctmgr -n -P list cluster "$CLUSTER" format=cluster 2>/dev/null) ]]; then
        log "registering cluster $CLUSTER in accounting"
        sacctmgr -i add cluster "$CLUSTER" >&2
    fi
}

start_slurmctld() {
    if pid_alive "$RUN/slurmctld.pid"; then
        log "slurmctld already running (pid $(<"$RUN/slurmctld.pid"))"; return
    fi
    log "starting slurmctld"
    rm -f "$RUN/slurmctld.pid"; STARTED+=("slurmctld=$RUN/slurmctld.pid")
    slurmctld -f "$SLURM_CONF_FILE" </dev/null >>"$LOG/slurmctld-stdio.log" 2>&1 \
        || die "slurmctld failed to start"
    wait_for "slurmctld to answer (scontrol ping)" sh -c 'scontrol ping | grep -q UP'
}

start_slurmd() {
    if pid_alive "$RUN/slurmd.pid"; then
        log "slurmd already running (pid $(<"$RUN/slurmd.pid"))"; return
    fi
    log "starting slurmd"
    rm -f "$RUN/slurmd.pid"; STARTED+=("slurmd=$RUN/slurmd.pid")
    slurmd -f "$SLURM_CONF_FILE" </dev/null >>"$LOG/slurmd-stdio.log" 2>&1 \
        || die "slurmd failed to start"
}

node_idle() {
    local st
    st=$(sinfo -h -N -o '%T' 2>/dev/null) || return 1
    # After an unclean previous shutdown the node may be DOWN/DRAINED; resume it.
    if [[ $st == down* || $st == drain* ]]; then
        scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true
    fi
    [[ $st == idle* || $st == mixed* || $st == allocated* ]]
}

smoke_test() {
    local id out
    log "smoke test: srun -N1 -n1 hostname"
    # shellcheck disable=SC2016  # $SLURM_JOB_ID expands inside the job
    out=$(timeout "$TIMEOUT" srun -N1 -n1 --mem=100 -c1 -J vww-smoke \
            sh -c 'echo "$SLURM_JOB_ID $(hostname)"' 2>&1) \
        || { log "$out"; die "smoke test srun failed"; }
    id=${out%% *}
    [[ $id =~ ^[0-9]+$ ]] || die "unexpected srun output: $out"
    log "smoke job $id ran on ${out#* }"
    # Job records reach slurmdbd asynchronously; wait until sacct sees it.
    wait_for "sacct to report smoke job $id COMPLETED" \
        sh -c "sacct -n -X -P -j $id -o State | grep -qx COMPLETED"
    log "smoke job $id: COMPLETED in sacct"
}

cmd_start() {
    local t0=$SECONDS
    [[ $(id -u) == 0 ]] || die "must run as root"
    install_packages
    write_configs
    start_munge
    start_mariadb
    start_slurmdbd
    start_slurmctld
    start_slurmd
    # Job steps (the plugin's `srun` inside each batch job) do not always inherit
    # SLURM_CONF, and then look in the default place: point it at this cluster.
    mkdir -p /etc/slurm
    ln -sfn "$SLURM_CONF_FILE" /etc/slurm/slurm.conf
    wait_for "node to become idle in sinfo" node_idle
    wait_for "sacct to answer" sacct -n -X -S now
    smoke_test
    log "cluster '$CLUSTER' up in $((SECONDS - t0))s (state dir $STATE)"
    printf 'export SLURM_CONF=%q\n' "$SLURM_CONF_FILE"
}

# ----------------------------------------------------------------------------
# stop / status
# ----------------------------------------------------------------------------
any_alive() {
    local pid
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done
    return 1
}

# stop_daemons NAME=PIDFILE...: SIGTERM all given daemons at once, wait up to
# 15 s for all of them to exit, then SIGKILL the survivors.  (Each daemon
# needs ~1-2 s to exit, so stopping independent ones together saves time.)
stop_daemons() {
    local arg name pidfile pid i pids=()
    for arg in "$@"; do
        name=${arg%%=*} pidfile=${arg#*=}
        if pid_alive "$pidfile"; then
            pid=$(<"$pidfile")
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$pidfile"
    done
    ((${#pids[@]})) || return 0
    for ((i = 0; i < 150; i++)); do
        any_alive "${pids[@]}" || return 0
        sleep 0.1
    done
    log "sending SIGKILL to ${pids[*]} (did not exit after SIGTERM)"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.2
}

# slurm/munge/mariadb processes still holding files under $STATE open (stray
# slurmstepd, daemons whose pid file got lost).  Only these daemon names are
# considered, so e.g. a CI `tail -f $STATE/log/...` is left alone.
stray_pids() {
    local d pid comm fd
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        comm=$(cat "$d/comm" 2>/dev/null) || continue
        [[ $comm =~ ^(slurm|munge|mariadb|mysql) ]] || continue
        for fd in "$d"/fd/*; do
            if [[ $(readlink "$fd" 2>/dev/null) == "$STATE"/* ]]; then
                echo "$pid"; break
            fi
        done
    done
}

# with_descendants PID...: print the PIDs and all their (transitive) children.
with_descendants() {
    (($#)) || return 0
    ps -eo pid=,ppid= | awk -v roots="$*" '
        { parent[$1] = $2 }
        END {
            n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1
            do { added = 0
                 for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; added = 1 }
            } while (added)
            for (p in keep) print p
        }'
}

cmd_stop() {
    local pids i
    # Cancel jobs first so no slurmstepd/job processes outlive slurmd.
    if pid_alive "$RUN/slurmctld.pid" && [[ -f $SLURM_CONF_FILE ]]; then
        if [[ -n $(squeue -h -o %i 2>/dev/null) ]]; then
            log "cancelling remaining jobs"
            squeue -h -o %i 2>/dev/null | xargs -r scancel >/dev/null 2>&1 || true
            for ((i = 0; i < 100; i++)); do
                [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
                sleep 0.1
            done
        fi
    fi
    # Order: slurm daemons, then their accounting backend, then DB + munge.
    stop_daemons slurmd="$RUN/slurmd.pid" slurmctld="$RUN/slurmctld.pid"
    stop_daemons slurmdbd="$RUN/slurmdbd.pid"
    stop_daemons mariadbd="$RUN/mariadb.pid" munged="$MUNGE_DIR/munged.pid"
    # Last resort for anything still holding our state dir (e.g. slurmstepd
    # after a crashed slurmd), together with its descendants (job processes).
    # shellcheck disable=SC2046  # one PID per word
    pids=$(with_descendants $(stray_pids) | tr '\n' ' ')
    if [[ -n ${pids// } ]]; then
        log "killing leftover processes: $pids"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
    fi
    log "stopped"
}

cmd_status() {
    local name f rc=0
    for name in munged mariadb slurmdbd slurmctld slurmd; do
        f=$RUN/$name.pid
        [[ $name == munged ]] && f=$MUNGE_DIR/munged.pid
        if pid_alive "$f"; then
            echo "$name: running (pid $(<"$f"))"
        else
            echo "$name: not running"; rc=1
        fi
    done
    echo "SLURM_CONF=$SLURM_CONF_FILE"
    if [[ -f $SLURM_CONF_FILE ]]; then
        echo "--- sinfo"; sinfo 2>&1 || rc=1
        echo "--- squeue"; squeue 2>&1 || rc=1
    fi
    return $rc
}

case ${1:-} in
    start)  cmd_start ;;
    stop)   cmd_stop ;;
    status) cmd_status ;;
    logs)   dump_logs ;;
    *)      echo "usage: $0 {start|stop|status|logs}" >&2; exit 2 ;;
esac
