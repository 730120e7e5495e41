#!/usr/bin/env bash
# A throwaway single-node Ceph cluster (one mon, one memstore OSD, one RGW) on loopback, so
# tests can talk to a real S3 implementation. Everything lives under one data dir.
#   rgw.sh start  <datadir>   start (or re-print when already healthy); prints <datadir>/env
#   rgw.sh stop   <datadir>   stop the daemons it started, by PID
#   rgw.sh status <datadir>   exit 0 when healthy
set -euo pipefail

BUCKET=barge-test
RGW_NAME=barge
MARKER=.barge-rgw
PACKAGES=(ceph-mon ceph-osd radosgw)

die() { echo "rgw.sh: $*" >&2; exit "${EXIT_CODE:-1}"; }
log() { echo "rgw.sh: $*" >&2; }

usage() { echo "usage: rgw.sh start|stop|status <datadir>" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
CMD=$1
DIR=$(realpath -m -- "$2")
CONF=$DIR/ceph.conf
PIDS=$DIR/pids
# Stop order: RGW first so it does not spin on a vanishing cluster, mon last.
DAEMONS=(rgw osd mon)

# A PID file only counts while that PID is still our daemon: a live, non-zombie process whose
# command line names this data dir's ceph.conf (PIDs get recycled).
daemon_pid() {
  local f=$PIDS/$1.pid pid state
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
  state=$(sed 's/^.*) \(.\).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-c $CONF " || return 1
  echo "$pid"
}

endpoint() { sed -n 's/^S3_ENDPOINT=//p' "$DIR/env" 2>/dev/null; }

http_ok() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1/" 2>/dev/null) == 200 ]]; }

healthy() {
  local d ep
  for d in "${DAEMONS[@]}"; do daemon_pid "$d" >/dev/null || return 1; done
  ep=$(endpoint)
  [[ -n $ep ]] && http_ok "$ep"
}

stop_one() {
  local name=$1 pid i
  pid=$(daemon_pid "$name") || { rm -f "$PIDS/$name.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    daemon_pid "$name" >/dev/null || { rm -f "$PIDS/$name.pid"; return 0; }
    sleep 0.1
  done
  log "$name (pid $pid) ignored SIGTERM for 5 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    daemon_pid "$name" >/dev/null || { rm -f "$PIDS/$name.pid"; return 0; }
    sleep 0.1
  done
  die "$name (pid $pid) survived SIGKILL"
}

stop_all() { local d; for d in "${DAEMONS[@]}"; do stop_one "$d"; done; }

# Ports come from a random range below the kernel's ephemeral one (where every outgoing
# connection takes its local port, and so could take ours between check and bind), and are
# checked by connecting: ceph-mon would otherwise retry a taken port for 15 s before failing.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p i low=32768
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  ((low > 12000)) || low=32768
  for ((i = 0; i < 200; i++)); do
    p=$((10000 + RANDOM % (low - 10000)))
    if port_free "$p" && [[ " ${TAKEN:-} " != *" $p "* ]]; then TAKEN="${TAKEN:-} $p"; echo "$p"; return; fi
  done
  die "no free loopback port found"
}

# setsid detaches the daemon from our session; since a non-interactive shell's background
# child is not a process-group leader, setsid execs in place and $! is the daemon itself.
spawn() {
  local name=$1; shift
  setsid "$@" -c "$CONF" -f </dev/null >>"$DIR/log/$name.out" 2>&1 &
  echo $! >"$PIDS/$name.pid"
}

wait_for() {
  local what=$1 tries=$2 name=$3; shift 3
  local i
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    daemon_pid "$name" >/dev/null || { tail -n 20 "$DIR/log/$name.out" >&2 || true; stop_all; die "$name exited while waiting for $what (logs in $DIR/log)"; }
    sleep 0.1
  done
  stop_all
  die "timed out waiting for $what (logs in $DIR/log)"
}

ensure_packages() {
  local need=()
  command -v radosgw >/dev/null || need+=("${PACKAGES[@]}")
  command -v curl >/dev/null || need+=(curl)
  [[ ${#need[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    EXIT_CODE=3 die "missing ${need[*]}; install them (Debian: apt-get install --no-install-recommends ${need[*]}) or run as root on a Debian-like system"
  fi
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet; only refresh when the first try fails.
  if ! apt-get install -y -q --no-install-recommends "${need[@]}" >"${TMPDIR:-/tmp}/rgw-apt.log" 2>&1; then
    apt-get update -q >>"${TMPDIR:-/tmp}/rgw-apt.log" 2>&1 || true
    apt-get install -y -q --no-install-recommends "${need[@]}" >>"${TMPDIR:-/tmp}/rgw-apt.log" 2>&1 \
      || EXIT_CODE=3 die "apt-get install ${need[*]} failed; see ${TMPDIR:-/tmp}/rgw-apt.log"
  fi
}

# Only ever wipe a dir this script created (it holds the marker) or an empty one.
prepare_dir() {
  if [[ -d $DIR && -n $(ls -A "$DIR") && ! -f $DIR/$MARKER ]]; then
    die "$DIR is not empty and was not made by rgw.sh; refusing to use it"
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR"/{run,log,mon,osd,rgw,pids}
  touch "$DIR/$MARKER"
}

rand() { tr -dc "$1" </dev/urandom | head -c "$2" || true; }

write_conf() {
  cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon initial members = a
mon host = [v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$cluster-\$name.asok
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
# One OSD: pools must accept a single replica and CRUSH must place it on this host.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
# The default 1 s between paxos proposals dominates bring-up time.
paxos propose interval = 0.05

[mon]
mon data = $DIR/mon/\$cluster-\$id

[osd]
osd data = $DIR/osd/\$cluster-\$id
keyring = $DIR/osd/\$cluster-\$id/keyring
osd objectstore = memstore
memstore device bytes = 4294967296

[client.rgw.$RGW_NAME]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $DIR/rgw
# Deleted objects otherwise linger in OSD memory for hours before GC frees them.
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF
}

start() {
  ensure_packages
  if healthy; then
    echo "$DIR/env"
    return 0
  fi
  # Memstore keeps no data across an OSD restart, so a half-dead cluster is rebuilt from scratch.
  if [[ -d $PIDS ]]; then stop_all; fi
  # A port checked free can still be taken by another process before a daemon binds it (tests
  # start servers in parallel); only that failure earns a fresh cluster on new ports.
  local attempt rc
  for attempt in 1 2 3; do
    prepare_dir
    # In the background, not in a condition, so errexit still holds inside bring_up.
    (bring_up) &
    rc=0; wait $! || rc=$?
    if [[ $rc == 0 ]]; then echo "$DIR/env"; return 0; fi
    grep -qs "Address already in use" "$DIR"/log/*.out || exit "$rc"
    log "a port was taken while the cluster came up; retrying on new ports ($attempt/3)"
  done
  die "every attempt lost a port to another process (logs in $DIR/log)"
}

bring_up() {
  FSID=$(cat /proc/sys/kernel/random/uuid)
  MON1=$(pick_port); MON2=$(pick_port); RGW_PORT=$(pick_port)
  write_conf

  local ceph=(ceph -c "$CONF" -n client.admin --connect-timeout 15)
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n "client.rgw.$RGW_NAME" \
    --cap mon 'allow rw' --cap osd 'allow rwx' >/dev/null

  monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring"
  spawn mon ceph-mon -i a
  wait_for "the monitor" 300 mon "${ceph[@]}" mon stat >/dev/null 2>&1

  local osd_uuid osd_key osd_id
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  osd_key=$(ceph-authtool --gen-print-key)
  osd_id=$(echo "{\"cephx_secret\": \"$osd_key\"}" | "${ceph[@]}" osd new "$osd_uuid" -i -)
  mkdir -p "$DIR/osd/ceph-$osd_id"
  ceph-authtool --create-keyring "$DIR/osd/ceph-$osd_id/keyring" --name "osd.$osd_id" --add-key "$osd_key" >/dev/null
  ceph-osd -c "$CONF" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/osd.out" 2>&1
  spawn osd ceph-osd -i "$osd_id"
  osd_up() { "${ceph[@]}" osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'; }
  wait_for "the OSD to come up" 300 osd osd_up

  spawn rgw radosgw -n "client.rgw.$RGW_NAME"
  wait_for "RGW to answer HTTP" 600 rgw http_ok "http://127.0.0.1:$RGW_PORT"

  local ak sk
  ak=$(rand 'A-Z0-9' 20)
  sk=$(rand 'A-Za-z0-9' 40)
  radosgw-admin -c "$CONF" -n client.admin user create --uid=barge --display-name=barge \
    --access-key="$ak" --secret-key="$sk" >/dev/null
  # curl 7.88 signs SigV4 but leaves out x-amz-content-sha256, which RGW needs to verify the
  # signature; this is the SHA-256 of the empty body.
  local code empty_sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
  code=$(curl -s -o "$DIR/log/bucket.out" -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
    -H "x-amz-content-sha256: $empty_sha" --user "$ak:$sk" -X PUT "http://127.0.0.1:$RGW_PORT/$BUCKET")
  [[ $code == 200 ]] || { stop_all; die "creating bucket $BUCKET failed with HTTP $code: $(cat "$DIR/log/bucket.out")"; }

  cat >"$DIR/env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_REGION=us-east-1
S3_ACCESS_KEY_ID=$ak
S3_SECRET_ACCESS_KEY=$sk
S3_BUCKET=$BUCKET
S3_FORCE_PATH_STYLE=true
EOF
}

status() {
  local d pid rc=0
  for d in mon osd rgw; do
    if pid=$(daemon_pid "$d"); then echo "$d: running (pid $pid)"; else echo "$d: stopped"; rc=1; fi
  done
  local ep
  ep=$(endpoint)
  if [[ -n $ep ]] && http_ok "$ep"; then echo "s3: $ep ok"; else echo "s3: not answering"; rc=1; fi
  return $rc
}

case $CMD in
  start) start ;;
  stop) if [[ -d $PIDS ]]; then stop_all; fi ;;
  status) status ;;
  *) usage ;;
esac
