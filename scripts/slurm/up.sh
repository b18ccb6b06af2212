#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for trying `hydra/launcher=slurm` against a real scheduler:
# munged, MariaDB + slurmdbd (job accounting, so `sacct` answers), slurmctld and slurmd, all started directly
# (no systemd), as root, in the background, with everything under one directory of their own:
#   $REPROG_SLURM_DIR (default /tmp/reprog-slurm): etc/slurm.conf, etc/slurmdbd.conf, munge key and socket,
#   the MariaDB data directory, state, spool, logs and the pid file of each daemon started here.
# It never reads or writes /etc/slurm or /etc/munge, uses ports of its own (6917-6919 for SLURM, 3406 for
# MariaDB), and refuses to start while a slurmctld it did not start is running. `scripts/slurm/down.sh` stops
# only what this script started. Clients need SLURM_CONF=$REPROG_SLURM_DIR/etc/slurm.conf (printed at the end).
set -euo pipefail

D=${REPROG_SLURM_DIR:-/tmp/reprog-slurm}
CLUSTER=reprog
PARTITION=${REPROG_SLURM_PARTITION:-debug}
CTLD_PORT=6917 SLURMD_PORT=6918 DBD_PORT=6919 DB_PORT=3406
say() { echo "slurm-up: $*"; }
die() { echo "slurm-up: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (the daemons run as root here); nothing started"

# -- packages ---------------------------------------------------------------------------------------------------
need=()
for pair in slurmctld:slurmctld slurmd:slurmd slurmdbd:slurmdbd munged:munge mariadbd:mariadb-server sinfo:slurm-client; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    say "installing the missing Debian packages: ${need[*]} (slurm-wlm, munge, slurmdbd, mariadb-server)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -q --no-install-recommends slurm-wlm slurmdbd munge mariadb-server; } \
        >"/tmp/reprog-slurm-apt.log" 2>&1 || die "apt-get install failed (see /tmp/reprog-slurm-apt.log)"
fi
export PATH="$PATH:/usr/sbin:/sbin"

# -- never touch a cluster that is not ours -------------------------------------------------------------------
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if alive "$D/run/slurmctld.pid"; then
    say "already up (slurmctld $(cat "$D/run/slurmctld.pid")); export SLURM_CONF=$D/etc/slurm.conf"
    exit 0
fi
ours() { for f in "$D"/run/*.pid; do [ -f "$f" ] && [ "$(cat "$f")" = "$1" ] && return 0; done; return 1; }
for name in slurmctld slurmd slurmdbd; do
    for p in $(pgrep -x $name || true); do
        ours "$p" || die "a $name this script did not start is running (pid $p); refusing to start another"
    done
done

mkdir -p "$D"/{etc,run,log,state,spool,munge,mysql}
chmod 700 "$D" "$D/munge"
touch "$D/run/started"  # what down.sh may stop: the pid files listed here

# -- munge: its own key and socket ----------------------------------------------------------------------------
MUNGE_SOCKET=$D/munge/munge.socket
[ -s "$D/munge/munge.key" ] || { dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none; chmod 400 "$D/munge/munge.key"; }
if ! alive "$D/run/munged.pid"; then
    munged --force --key-file="$D/munge/munge.key" --socket="$MUNGE_SOCKET" --pid-file="$D/run/munged.pid" \
        --log-file="$D/log/munged.log" --seed-file="$D/munge/munge.seed"
    echo munged >>"$D/run/started"
fi
# Slurm 22.05's accounting clients (sacctmgr, sacct, slurmctld -> slurmdbd) ignore AuthInfo=socket= and dial munge's
# default socket: point it at ours, only where no other munge owns that path (down.sh removes only our link).
if [ ! -e /run/munge/munge.socket.2 ] && [ ! -L /run/munge/munge.socket.2 ]; then
    [ -d /run/munge ] || { mkdir -p /run/munge && echo munge-dir >>"$D/run/started"; }
    ln -s "$MUNGE_SOCKET" /run/munge/munge.socket.2 && echo munge-link >>"$D/run/started"
elif [ "$(readlink /run/munge/munge.socket.2)" != "$MUNGE_SOCKET" ]; then
    die "/run/munge/munge.socket.2 belongs to another munge; refusing to start"
fi
munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET" >/dev/null || die "munge does not answer ($D/log/munged.log)"

# -- MariaDB on 127.0.0.1:$DB_PORT with its own data directory ----------------------------------------------
if [ ! -d "$D/mysql/mysql" ]; then
    mariadb-install-db --user=root --datadir="$D/mysql" --auth-root-authentication-method=socket \
        >"$D/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed ($D/log/mariadb-install.log)"
fi
if ! alive "$D/run/mariadb.pid"; then
    (setsid mariadbd --no-defaults --user=root --datadir="$D/mysql" --socket="$D/run/mysql.sock" \
        --bind-address=127.0.0.1 --port=$DB_PORT --pid-file="$D/run/mariadb.pid" --log-error="$D/log/mariadb.log" \
        --innodb-buffer-pool-size=64M --skip-log-bin </dev/null >/dev/null 2>&1 &)
    echo mariadb >>"$D/run/started"
fi
for _ in $(seq 60); do mariadb --no-defaults -S "$D/run/mysql.sock" -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
mariadb --no-defaults -S "$D/run/mysql.sock" -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'reprog';
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'reprog';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" \
    || die "MariaDB does not answer ($D/log/mariadb.log)"

# -- configuration: this machine's cores and memory, from slurmd -C ------------------------------------------
HOST=$(hostname -s)
NODE=$(slurmd -C | head -1 | sed "s/^NodeName=[^ ]*/NodeName=$HOST NodeAddr=127.0.0.1/")
MEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE")
NODE=$(sed "s/RealMemory=[0-9]*/RealMemory=$((MEM * 9 / 10))/" <<<"$NODE")  # leave the OS its share
cat >"$D/etc/slurm.conf" <<EOF
# written by scripts/slurm/up.sh; a one-node cluster for trying reprog sweeps
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=30
CredType=cred/munge
# cred_expire: also how long a requeued job waits before it may start again (default 120 s)
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# memory is polled (no cgroups here): a job over its --mem is killed, as OOM on a cluster
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
JobCompType=jobcomp/none
JobRequeue=1
ReturnToService=2
KillWait=30
MinJobAge=300
InactiveLimit=0
SlurmdTimeout=300
$NODE State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$D/etc/slurmdbd.conf" <<EOF
# written by scripts/slurm/up.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$D/run/slurmdbd.pid
LogFile=$D/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=reprog
StorageLoc=slurm_acct_db
EOF
chmod 600 "$D/etc/slurmdbd.conf"
export SLURM_CONF=$D/etc/slurm.conf

# -- daemons --------------------------------------------------------------------------------------------------
wait_for() { for _ in $(seq "$1"); do eval "$2" >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }
if ! alive "$D/run/slurmdbd.pid"; then
    slurmdbd; echo slurmdbd >>"$D/run/started"
fi
wait_for 60 "sacctmgr -n show cluster" || die "slurmdbd does not answer ($D/log/slurmdbd.log)"
sacctmgr -n show cluster format=cluster | grep -qw $CLUSTER || sacctmgr -i add cluster $CLUSTER >/dev/null
sacctmgr -n show account format=account | grep -qw reprog || sacctmgr -i add account reprog Description=reprog Organization=reprog >/dev/null
sacctmgr -n show user format=user | grep -qw root || sacctmgr -i add user root DefaultAccount=reprog >/dev/null

alive "$D/run/slurmctld.pid" || { slurmctld; echo slurmctld >>"$D/run/started"; }
wait_for 60 "scontrol ping | grep -q UP" || die "slurmctld does not answer ($D/log/slurmctld.log)"
alive "$D/run/slurmd.pid" || { slurmd; echo slurmd >>"$D/run/started"; }
wait_for 60 "sinfo -h -N -o %T | grep -qE '^(idle|mixed|allocated)'" || die "the node does not come up ($D/log/slurmd.log; sinfo: $(sinfo -h -N 2>&1))"

sinfo >/dev/null || die "sinfo does not answer"
sacct -n -X >/dev/null || die "sacct does not answer"
say "up: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %T') ; sacct answers"
echo "export SLURM_CONF=$SLURM_CONF"
