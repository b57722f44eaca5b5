#!/bin/sh
# probe.sh - the guest side of tests/powercut/powercut.sh.  The guest's
# kernel runs it as init (init=/usr/local/sbin/lgtest: build-debian.sh's
# lgtest fetches it through fw_cfg and execs it as PID 1), so a boot takes
# no systemd, no udev and no DHCP.  It mounts the data disk (/dev/vdb: an
# ext4 with the gateway's binary, config, base images and overlays, which the
# host serves through nbdkit's cache filter in writeback mode), reports what
# the last power cut left behind, starts the gateway on 0.0.0.0:3260
# (reached from the host through QEMU's hostfwd), and then, by the boot's
# mode (fw_cfg opt/lgmode), commits or saves in a loop until the host pulls
# the plug.  Reports are lines "LGTEST ..." on COM1.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
say() { echo "LGTEST $*" >/dev/ttyS0; }
halt_now() { say "end $*"; sync; echo o >/proc/sysrq-trigger; sleep 60; }
mount -t tmpfs tmpfs /tmp
for m in e1000 virtio_blk ext4 virtio_net; do modprobe "$m" 2>/dev/null; done
fw=/sys/firmware/qemu_fw_cfg/by_name/opt
mode=$(cat "$fw/lgmode/raw" 2>/dev/null)
ini_c=$(cat "$fw/lgini/raw" 2>/dev/null)
i=0
while [ ! -b /dev/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -o rw /dev/vdb /mnt || halt_now "FAIL: cannot mount the data disk"
say "mounted mode=$mode"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0 2>/dev/null  # (the initramfs may have set it: ip=)
ip route add default via 10.0.2.2 2>/dev/null

# what the last cut left: the config file and the committed files
say "cfgsum $(sha256sum </mnt/lungate.json | cut -c1-64)"
for f in /mnt/commit/*.img; do
	[ -e "$f" ] || continue
	say "commitfile ${f##*/} $(stat -c %s "$f") $(sha256sum <"$f" | cut -c1-64)"
done
say "commitdir $(ls -a /mnt/commit | tr '\n' ' ')"
# the temporary files of commits the cut interrupted: garbage, never a name
rm -f /mnt/commit/.*.commit-*

cd /mnt || halt_now "FAIL: no /mnt"
./lungate serve -c /mnt/lungate.json --listen 0.0.0.0:3260 --control /run/lg.sock \
	--log-level warn 2>/dev/ttyS0 &
lg=$!
i=0
until ./lungate ls --control /run/lg.sock >/dev/null 2>&1; do
	kill -0 $lg 2>/dev/null || halt_now "FAIL: lungate did not start"
	i=$((i + 1))
	[ $i -lt 600 ] || halt_now "FAIL: lungate did not answer on its control socket"
	sleep 0.1
done
say "ready"

case $mode in
commit) # commit client C's disk again and again; keep the last two files
	n=0
	b=$(cut -c1-8 /proc/sys/kernel/random/uuid)   # this boot's names
	while :; do
		n=$((n + 1))
		if ./lungate overlay commit room "$ini_c" "/mnt/commit/c-$b-$n.img" \
			--control /run/lg.sock >/run/commit.out 2>&1; then
			say "committed c-$b-$n.img"
		else
			say "commit failed: $(tr '\n' ' ' </run/commit.out)"
		fi
		[ $n -le 2 ] || rm -f "/mnt/commit/c-$b-$((n - 2)).img"
	done ;;
save) # save the running configuration over its file again and again
	n=0
	while :; do
		n=$((n + 1))
		if ./lungate save --control /run/lg.sock >/run/save.out 2>&1; then
			say "saved $n $(sha256sum </mnt/lungate.json | cut -c1-64)"
		else
			say "save failed: $(tr '\n' ' ' </run/save.out)"
		fi
	done ;;
esac
while :; do sleep 3600; done
