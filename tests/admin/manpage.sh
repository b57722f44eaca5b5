#!/usr/bin/env bash
# lungate(8), generated at build time, agrees with the command's own help:
# every subcommand `lungate --help` lists has an entry in the man page's
# COMMANDS and every entry there is in --help; `lungate COMMAND --help`
# works for each, and every long option it shows is in the man page, and
# every option of the man page's OPTIONS is in some --help.
# shellcheck source=functions.sh
source "$(dirname "$0")/functions.sh"

require_cmd man
: "${BUILDDIR:?BUILDDIR must name the build directory (lungate.8)}"
[[ -s $BUILDDIR/lungate.8 ]] || fail "the build did not generate $BUILDDIR/lungate.8"
MANWIDTH=200 run man -P cat -l "$BUILDDIR/lungate.8" >"$LG_TMP/man.txt" 2>"$LG_TMP/man.err" ||
	fail "man -l $BUILDDIR/lungate.8 failed: $(cat "$LG_TMP/man.err")"
run "$LUNGATE" --help >"$LG_TMP/help.txt" || fail "lungate --help failed"

python3 - "$LUNGATE" "$LG_TMP/man.txt" "$LG_TMP/help.txt" <<-'PY' || fail "the man page and --help disagree (above)"
	import re, subprocess, sys
	lungate, man_path, help_path = sys.argv[1:]
	man, top = open(man_path).read(), open(help_path).read()
	bad = []
	# subcommands in --help: the word after "lungate [options]" or "| "
	helped = set()
	for line in top.splitlines():
	    helped |= set(re.findall(r'(?:lungate|\|)\s+(?:\[[^\]]*\]\s+)*([a-z][a-z-]+)', line))
	# the entries of the man page's COMMANDS section
	sec = man.split("\nCOMMANDS\n", 1)[1].split("\nOBJECT COMMANDS\n", 1)[0]
	manned = set(re.findall(r'^ {7}([a-z][a-z-]+)', sec, re.M))
	if not helped or not manned:
	    bad.append("found no subcommands (--help: %s, man: %s)" % (helped, manned))
	for c in sorted(helped - manned):
	    bad.append("'%s' is in lungate --help but not in the man page's COMMANDS" % c)
	for c in sorted(manned - helped):
	    bad.append("'%s' is in the man page's COMMANDS but not in lungate --help" % c)
	# each subcommand's own --help, and its options in the man page
	shown = set(re.findall(r'--[a-z][a-z-]+', top))
	for c in sorted(helped | {"overlay"}):
	    p = subprocess.run([lungate, c, "--help"], capture_output=True, text=True, timeout=30)
	    if p.returncode != 0:
	        bad.append("lungate %s --help exited %d: %s" % (c, p.returncode, p.stderr.strip()))
	        continue
	    opts = set(re.findall(r'--[a-z][a-z-]+', p.stdout))
	    shown |= opts
	    for o in sorted(opts):
	        if o not in man:
	            bad.append("lungate %s --help shows %s, which the man page does not" % (c, o))
	# the man page's OPTIONS are all in some --help
	opt_sec = man.split("\nOPTIONS\n", 1)[1].split("\nCONFIGURATION\n", 1)[0]
	for o in sorted(set(re.findall(r'--[a-z][a-z-]+', opt_sec)) - shown):
	    bad.append("the man page's OPTIONS has %s, which no --help shows" % o)
	for b in bad:
	    print("manpage:", b, file=sys.stderr)
	sys.exit(1 if bad else 0)
PY
log "PASS"
