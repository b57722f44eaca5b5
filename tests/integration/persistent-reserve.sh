#!/usr/bin/env bash
# Persistent reservations between two initiators, and APTPL across a restart
# of the gateway: initiator A registers with APTPL and reserves the LU Write
# Exclusive; initiator B (registered too) may read but its WRITE gets
# RESERVATION CONFLICT. The state is in IMAGE.pr.json (serve --image). After
# the gateway restarts, the keys and the reservation are back and B's WRITE
# still conflicts; once A unregisters with APTPL=0 the file is gone, and after
# another restart no registration is left.  With a config file the state is
# in lungate-pr-fileio-NAME.json beside it.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"
: "${PRCLIENT:?PRCLIENT must name the prclient helper}"

IQN=$LG_IQN_PREFIX:pr
A=$LG_IQN_PREFIX:pr-initiator-a
B=$LG_IQN_PREFIX:pr-initiator-b
IMG=$LG_TMP/disk.img
make_random_image "$IMG" 8

# pr INITIATOR COMMAND ARG...: run the client, print what it prints.
pr() {
	local who=$1
	shift
	run "$PRCLIENT" "$(iscsi_url 0)" "$who" "$@" || fail "prclient $who $* failed"
}

# expect WANT INITIATOR COMMAND ARG...: the client must print WANT.
expect() {
	local want=$1 got
	shift
	got=$(pr "$@")
	[[ $got == "$want" ]] || fail "prclient $*: got '$got', want '$want'"
	log "$* -> $(tr '\n' ' ' <<<"$got")"
}

start_lungate --image "$IMG" --iqn "$IQN"
expect "ptpl_c=1 ptpl_a=0" "$A" caps
expect GOOD "$A" register 0x1111 aptpl
expect GOOD "$B" register 0x2222 aptpl
expect "ptpl_c=1 ptpl_a=1" "$A" caps
expect GOOD "$A" reserve 0x1111 1
expect "1 0x0000000000001111" "$B" reservation
expect RESERVATION_CONFLICT "$B" write 1
expect GOOD "$B" read 1
expect GOOD "$A" write 1
[[ -s $IMG.pr.json ]] || fail "no APTPL state file $IMG.pr.json"
stop_lungate

start_lungate --image "$IMG" --iqn "$IQN"
grep -qF "2 persistent registrations and a reservation loaded from $IMG.pr.json" "$LG_LOG" ||
	fail "the gateway did not say at start that it loaded the state from $IMG.pr.json"
expect $'0x0000000000001111\n0x0000000000002222' "$B" keys
expect "1 0x0000000000001111" "$B" reservation
expect RESERVATION_CONFLICT "$B" write 1
expect GOOD "$A" write 1
# a third initiator, not registered: RESERVE(6) and PERSISTENT RESERVE OUT conflict rules
expect RESERVATION_CONFLICT "$LG_IQN_PREFIX:pr-initiator-c" reserve 0x3333 1
# A releases by unregistering, with APTPL=0: the last REGISTER's APTPL bit
# counts for the whole LU, so the state file goes
expect GOOD "$A" unregister 0x1111
expect "none" "$B" reservation
expect GOOD "$B" write 1
[[ ! -e $IMG.pr.json ]] || fail "the state file $IMG.pr.json stays after APTPL was turned off"
assert_alive
stop_lungate

start_lungate --image "$IMG" --iqn "$IQN"
expect "" "$A" keys
expect GOOD "$B" write 1
stop_lungate

# With a config file, the state file is beside it, named after the storage object.
mkdir "$LG_TMP/conf"
CFG=$LG_TMP/conf/gw.json
config_one_lun "$CFG" "$IQN" fileio d0 "$IMG"
start_lungate -c "$CFG"
expect GOOD "$A" register 0x4444 aptpl
expect GOOD "$A" reserve 0x4444 3
[[ -s $LG_TMP/conf/lungate-pr-fileio-d0.json ]] || fail "no state file lungate-pr-fileio-d0.json beside the config"
stop_lungate
start_lungate -c "$CFG"
expect "3 0x0000000000004444" "$B" reservation
expect RESERVATION_CONFLICT "$B" read 1
stop_lungate
log "PASS"
