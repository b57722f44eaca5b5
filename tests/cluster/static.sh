#!/usr/bin/env bash
# Several gateways without Ceph: a static "gateways" list, local overlays.
# 30 initiators log in through the entry point and are redirected over the
# three gateways (each gets some); each lands on the same gateway every
# time, so a write made through the entry point is there on the next login;
# `lungate ls` says failover is not possible; and when a gateway stops, its
# initiators are NOT served elsewhere (their overlay is on it) while the
# others keep their gateway.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

IQN=$LG_IQN_PREFIX:cluster-static
cl_net "gw1:$CL_NET.11+$CL_ENTRY" "gw2:$CL_NET.12" "gw3:$CL_NET.13" "cli:$CL_NET.50"

base=$LG_TMP/base.raw
make_random_image "$base" 8
gws='["'$CL_NET'.11:3260", "'$CL_NET'.12:3260", "'$CL_NET'.13:3260"]'
for i in 1 2 3; do
	mkdir -p "$LG_TMP/ov$i"
	cl_config "$LG_TMP/gw$i.json" \
		'{"name": "room", "address": "'$CL_NET.1$i':3260", "entry": "'$CL_ENTRY':3260", "gateways": '"$gws"'}' \
		/backstores/cow/c '{"plugin": "fileio", "name": "base", "dev": "'"$base"'"}' \
		'{"plugin": "cow", "name": "c", "base": "/backstores/fileio/base", "overlay_dir": "'"$LG_TMP/ov$i"'", "per_initiator": true}'
	cl_start "$i" "$LG_TMP/gw$i.json"
done

# a cluster section that cannot work stops the start, saying why
bad=$LG_TMP/bad.json
cl_config "$bad" '{"name": "room", "address": "'$CL_NET.11'", "gateways": ["'$CL_NET.11':3260"]}' \
	/backstores/fileio/base '{"plugin": "fileio", "name": "base", "dev": "'"$base"'"}'
out=$(timeout 30 "$LUNGATE" serve -c "$bad" --listen 127.0.0.1:3261 --control "$LG_TMP/bad.sock" 2>&1) &&
	fail "lungate served a cluster address without a port"
grep -q 'cluster: "address" .* must be "IP:PORT" (an explicit port)' <<<"$out" || fail "no reason given: $out"
cl_config "$bad" '{"name": "room", "address": "'$CL_NET.19':3260", "gateways": ["'$CL_NET.11':3260"]}' \
	/backstores/fileio/base '{"plugin": "fileio", "name": "base", "dev": "'"$base"'"}'
out=$(timeout 30 "$LUNGATE" serve -c "$bad" --listen 127.0.0.1:3261 --control "$LG_TMP/bad.sock" 2>&1) &&
	fail "lungate served a static cluster that does not list it"
grep -q '"gateways" must list this gateway' <<<"$out" || fail "no reason given: $out"

# what the operator sees
ls_out=$("$LUNGATE" ls --control "${CL_SOCKS[1]}")
grep -q "failover is not possible" <<<"$ls_out" || fail "lungate ls does not say that failover is not possible: $ls_out"
grep -q "static membership" <<<"$ls_out" || fail "lungate ls does not show the static cluster: $ls_out"

cl_thirty

# a write through the entry point is there at the next login (same overlay)
ini=$LG_IQN_PREFIX:client-07
url="iscsi://$CL_ENTRY:3260/$IQN/0"
nsx cli timeout 60 qemu-io --image-opts \
	"driver=iscsi,transport=tcp,portal=$CL_ENTRY:3260,target=$IQN,lun=0,initiator-name=$ini" \
	-c 'write -P 0x5a 4096 65536' >"$LG_TMP/w.out" 2>&1 || fail "write through the entry point failed: $(cat "$LG_TMP/w.out")"
nsx cli timeout 60 qemu-io --image-opts \
	"driver=iscsi,transport=tcp,portal=$CL_ENTRY:3260,target=$IQN,lun=0,initiator-name=$ini" \
	-c 'read -P 0x5a 4096 65536' >"$LG_TMP/r.out" 2>&1 || fail "the write is not there at the next login: $(cat "$LG_TMP/r.out")"
: "$url"

# and no drain: the clients could go nowhere else
res=$("$LUNGATE" drain --control "${CL_SOCKS[2]}" 2>&1) && fail "lungate drain of a static cluster succeeded: $res"
grep -q "static cluster cannot drain" <<<"$res" || fail "lungate drain of a static cluster: $res"

# a gateway stops: the others' initiators stay put; its own find no other
# gateway serving them a different disk
cl_stop 3
gone=$LG_TMP/gone
awk '$2 == 3 { print $1 }' "$LG_TMP/round1" >"$gone"
awk '$2 != 3 { print $1 }' "$LG_TMP/round1" >"$LG_TMP/stay"
cl_login_round "$LG_TMP/stay" "$LG_TMP/round3"
cmp -s <(awk '$2 != 3' "$LG_TMP/round1") "$LG_TMP/round3" ||
	fail "the remaining initiators moved: $(diff <(awk '$2 != 3' "$LG_TMP/round1") "$LG_TMP/round3" | head)"
ini=$(head -n 1 "$gone")
if nsx cli timeout 30 iscsi-inq -i "$ini" "iscsi://$CL_ENTRY:3260/$IQN/0" >"$LG_TMP/gone.out" 2>&1; then
	cat "$LG_TMP/gone.out" >&2
	fail "$ini, whose overlay is on the stopped gateway, was served elsewhere"
fi
grep -q "login redirected.*initiator=$ini .*to=$CL_NET.13:3260,1" "${CL_LOGS[1]}" "${CL_LOGS[2]}" ||
	fail "$ini was not redirected to its own (stopped) gateway"
log "ok"
