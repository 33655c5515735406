#!/usr/bin/env bash
# A one-node SLURM cluster on localhost for testing profiles/slurm (Debian slurm-wlm + munge).
#   scripts/slurm_localhost.sh install   # apt-get install slurm-wlm munge (root)
#   scripts/slurm_localhost.sh start     # munged + slurmctld + slurmd, state under $SLURM_SCRATCH
#   scripts/slurm_localhost.sh stop      # stop them by the PIDs in their pid files
# The config goes to /etc/slurm/slurm.conf (a link): the executor's in-job srun clears SLURM_*
# variables, so SLURM_CONF pointing elsewhere does not reach it.
set -euo pipefail
SCRATCH=${SLURM_SCRATCH:-/tmp/spectsynth-slurm}
cmd=${1:-start}

install() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
}

start() {
  mkdir -p "$SCRATCH"/{state,spool,log,run} /etc/slurm /run/munge /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    chmod 400 /etc/munge/munge.key
  fi
  chown -R root /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  munged --force --pid-file="$SCRATCH/run/munged.pid" 2>/dev/null || munged --force
  local node
  node=$(slurmd -C | head -n 1)
  cat > "$SCRATCH/slurm.conf" <<CONF
ClusterName=spectsynth
SlurmctldHost=$(hostname -s)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
StateSaveLocation=$SCRATCH/state
SlurmdSpoolDir=$SCRATCH/spool
SlurmctldPidFile=$SCRATCH/run/slurmctld.pid
SlurmdPidFile=$SCRATCH/run/slurmd.pid
SlurmctldLogFile=$SCRATCH/log/slurmctld.log
SlurmdLogFile=$SCRATCH/log/slurmd.log
MpiDefault=none
$node
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  ln -sf "$SCRATCH/slurm.conf" /etc/slurm/slurm.conf
  slurmctld
  slurmd
  for _ in $(seq 1 50); do
    if sinfo -h -o %T 2>/dev/null | grep -q idle; then
      echo "slurm up: $(sinfo -h -o '%P %D %T %c cpus %m MB')"
      return 0
    fi
    sleep 0.2
  done
  echo "slurm did not come up; see $SCRATCH/log" >&2
  return 1
}

stop() {
  for daemon in slurmd slurmctld munged; do
    pidfile="$SCRATCH/run/$daemon.pid"
    [ "$daemon" = munged ] && [ ! -f "$pidfile" ] && pidfile=/run/munge/munged.pid
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
}

case "$cmd" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
