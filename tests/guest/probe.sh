#!/bin/sh
# The probe the Debian guest runs (handed in by QEMU's fw_cfg, see
# build-debian.sh): "early" before open-iscsi takes the session over,
# "late" once the system is up.  It reports on COM1 as "LGTEST ..." lines and
# ends by powering the guest off.  Mode (kernel command line lgtest=MODE):
#   plain   report and power off
#   loop    then write and flush a file a second for 45 s (the test cuts the
#           connection or resets the disk meanwhile), drop the page cache,
#           read everything back, read the disk directly, and power off
stage=$1
say() { echo "LGTEST $*" >/dev/ttyS0; }
mode=$(sed -n 's/.*lgtest=\([a-z0-9-]*\).*/\1/p' /proc/cmdline)
boot=$(cat /proc/sys/kernel/random/boot_id)
off() { sync; echo o >/proc/sysrq-trigger; sleep 60; }

if [ "$stage" = early ]; then
	if [ -e /lgtest-persist ]; then say "early: disk from boot $(cat /lgtest-persist)"; else say "early: clean disk"; fi
	if echo "$boot" >/lgtest-early && sync /lgtest-early; then say "early: wrote $boot"; else say "early: write FAILED"; fi
	exit 0
fi

say "late: boot $boot mode $mode"
if [ "$(cat /lgtest-early 2>/dev/null)" = "$boot" ]; then say "early file kept"; else say "early file LOST"; fi
if [ -e /lgtest-persist ]; then say "persist from $(cat /lgtest-persist)"; else say "no persist"; fi
echo "$boot" >/lgtest-persist && sync /lgtest-persist
root=$(findmnt -n -o SOURCE /)
say "root $root $(findmnt -n -o OPTIONS / | cut -d, -f1)"
# every program the loop runs, in the page cache before the disk may fail
dd if=/dev/null of=/dev/null 2>/dev/null; sync /lgtest-persist; sleep 0; cat /dev/null; grep -c x /dev/null >/dev/null
dmesg >/dev/null; findmnt / >/dev/null; cut -c1 /dev/null

if [ "$mode" = loop ]; then
	say "loop-start"
	i=0
	while [ $i -lt 45 ]; do
		if ! { echo "$i $boot" >/lgtest-loop.$i && sync /lgtest-loop.$i; } 2>/dev/null; then
			say "io-error at $i"
			break
		fi
		sleep 1
		i=$((i + 1))
	done
	say "loop-end $i"
	echo 3 >/proc/sys/vm/drop_caches
	bad=0
	j=0
	while [ $j -lt $i ]; do
		[ "$(cat /lgtest-loop.$j 2>/dev/null)" = "$j $boot" ] || bad=$((bad + 1))
		j=$((j + 1))
	done
	say "verify $i files, $bad bad"
	if dd if="$root" of=/dev/null bs=4096 count=256 iflag=direct 2>/dev/null; then
		say "direct read ok"
	else
		say "direct read failed"
	fi
	say "kernel: $(dmesg | grep -c 'I/O error') I/O errors, $(dmesg | grep -ci 'remounting filesystem read-only\|Remounting filesystem read-only') read-only remounts"
	say "mount $(findmnt -n -o OPTIONS / | cut -d, -f1)"
fi
say "done"
off
