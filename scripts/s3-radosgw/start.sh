#!/bin/bash
# A one-node Ceph (memstore, auth none) with radosgw: a real S3-compatible server that checks
# signatures, for tests and trials. From shared/recipes/s3-radosgw, with ports as arguments.
#   scripts/s3-radosgw/start.sh DIR [RGW_PORT=7480] [MON_PORT=6789]
# Needs: apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common
# Credentials: access key TESTKEY, secret TESTSECRET. Stop with scripts/s3-radosgw/stop.sh DIR.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
D=${1:?usage: start.sh DIR [RGW_PORT] [MON_PORT]}; RGW_PORT=${2:-7480}; MON_PORT=${3:-6789}
mkdir -p "$D"; cd "$D"
rm -rf mon-a osd-0 run log rgw keyring monmap && mkdir -p run log mon-a osd-0 rgw
FSID=$(cat /proc/sys/kernel/random/uuid)
sed -e "s#@DIR@#$D#g" -e "s/@MON_PORT@/$MON_PORT/" -e "s/@RGW_PORT@/$RGW_PORT/" -e "s/^fsid = .*/fsid = $FSID/" "$HERE/ceph.conf" > ceph.conf
ceph-authtool --create-keyring keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool keyring --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' >/dev/null
monmaptool --create --add a "v1:127.0.0.1:$MON_PORT" --fsid "$FSID" monmap >/dev/null
ceph-mon -c ceph.conf --mkfs -i a --monmap monmap --keyring keyring
ceph-mon -c ceph.conf -i a
U=$(cat /proc/sys/kernel/random/uuid); ID=$(ceph -c ceph.conf osd create "$U")
ceph-osd -c ceph.conf -i "$ID" --mkfs --osd-uuid "$U" 2>/dev/null
ceph -c ceph.conf osd crush add "osd.$ID" 1.0 host=localhost root=default >/dev/null 2>&1
ceph-osd -c ceph.conf -i "$ID" 2>/dev/null
radosgw -c ceph.conf -n client.rgw 2>/dev/null
for _ in $(seq 1 120); do curl -s -m 2 -o /dev/null "http://127.0.0.1:$RGW_PORT/" && break; sleep 0.5; done
radosgw-admin -c ceph.conf -n client.rgw user create --uid=test --display-name=test --access-key=TESTKEY --secret-key=TESTSECRET >/dev/null
echo "rgw ready on http://127.0.0.1:$RGW_PORT: pids mon=$(cat run/mon.a.pid) osd=$(cat run/osd.0.pid) rgw=$(cat run/client.rgw.pid)"
