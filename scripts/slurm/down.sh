#!/usr/bin/env bash
# Stops what scripts/slurm/up.sh started (the pid files it recorded under $REPROG_SLURM_DIR/run), nothing else.
# Jobs still running on the node are cancelled first. The directory (logs, accounting database) stays;
# `REPROG_SLURM_PURGE=1` removes it too.
set -uo pipefail
D=${REPROG_SLURM_DIR:-/tmp/reprog-slurm}
export PATH="$PATH:/usr/sbin:/sbin" SLURM_CONF=$D/etc/slurm.conf
[ -f "$D/run/started" ] || { echo "slurm-down: nothing started by slurm-up in $D"; exit 0; }

if [ -f "$D/run/slurmctld.pid" ] && kill -0 "$(cat "$D/run/slurmctld.pid")" 2>/dev/null; then
    timeout 20 scancel --full --user="$(id -un)" 2>/dev/null || true
fi
stop() {  # name, pid file: TERM, up to 20 s, then KILL
    local pid
    [ -f "$2" ] || return 0
    pid=$(cat "$2")
    kill -0 "$pid" 2>/dev/null || { rm -f "$2"; return 0; }
    kill -TERM "$pid"
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$2"
    echo "slurm-down: stopped $1 ($pid)"
}
# the reverse of the start order; only daemons up.sh recorded as started
for name in slurmd slurmctld slurmdbd mariadb munged; do
    grep -qx "$name" "$D/run/started" && stop "$name" "$D/run/$name.pid"
done
if grep -qx munge-link "$D/run/started" && [ "$(readlink /run/munge/munge.socket.2)" = "$D/munge/munge.socket" ]; then
    rm -f /run/munge/munge.socket.2
fi
grep -qx munge-dir "$D/run/started" && rmdir /run/munge 2>/dev/null
rm -f "$D/run/started"
[ "${REPROG_SLURM_PURGE:-0}" = 1 ] && rm -rf "$D" && echo "slurm-down: removed $D"
exit 0
