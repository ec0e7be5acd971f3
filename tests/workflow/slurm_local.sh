#!/usr/bin/env bash
# A real one-node SLURM cluster on localhost for the slurm-profile test.
#   slurm_local.sh install   apt-get the daemons (root; Debian packages)
#   slurm_local.sh start     configure munge + slurmctld + slurmd for this host and start them
#   slurm_local.sh stop      stop the daemons this script started (by PID file)
# Needs root. Prints what it does; exits non-zero with the reason when it cannot.
set -euo pipefail
cmd="${1:-start}"
state=/run/eqscale-slurm
host="$(hostname -s)"

need_root() { [ "$(id -u)" -eq 0 ] || { echo "slurm_local: needs root (uid $(id -u))" >&2; exit 3; }; }

case "$cmd" in
install)
  need_root
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    echo "slurm_local: slurm and munge already installed"; exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge
  ;;
start)
  need_root
  for b in slurmctld slurmd sbatch munged; do
    command -v "$b" >/dev/null || { echo "slurm_local: $b not installed (run: $0 install)" >&2; exit 4; }
  done
  getent hosts "$host" >/dev/null || { echo "slurm_local: host name $host does not resolve" >&2; exit 5; }
  mkdir -p "$state" /run/munge /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
  chown munge:munge /run/munge
  chown slurm:slurm /var/spool/slurmctld /var/log/slurm /run/slurm
  [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged
    echo munged >> "$state/started"
  fi
  munge -n | unmunge >/dev/null || { echo "slurm_local: munge does not work" >&2; exit 6; }
  cpus="$(nproc)"
  mem_mb="$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)"
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=eqscale-local
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=300
SchedulerType=sched/backfill
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  if ! pgrep -x slurmctld >/dev/null; then /usr/sbin/slurmctld; echo slurmctld >> "$state/started"; fi
  if ! pgrep -x slurmd >/dev/null; then /usr/sbin/slurmd; echo slurmd >> "$state/started"; fi
  for _ in $(seq 1 30); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then echo "slurm_local: node $host is up"; exit 0; fi
    sleep 1
  done
  echo "slurm_local: node did not come up:" >&2; sinfo >&2 || true; exit 7
  ;;
stop)
  [ -f "$state/started" ] || exit 0
  for d in slurmd slurmctld munged; do
    if grep -qx "$d" "$state/started"; then
      pkill -x "$d" || true
    fi
  done
  rm -f "$state/started"
  echo "slurm_local: stopped"
  ;;
*)
  echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
