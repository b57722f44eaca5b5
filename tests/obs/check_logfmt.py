#!/usr/bin/env python3
"""Check that every line of a lungate log is logfmt as lungate writes it:
ts=<RFC 3339 UTC> level=<debug|info|warn|error> msg="..." then key=value
fields, a value bare (no space, '"' or '=') or double-quoted with backslash
escapes.  Prints the offending lines; exit status 1 if there are any."""
import re
import sys

HEAD = re.compile(r'ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(debug|info|warn|error) ')
KEY = re.compile(r'[A-Za-z_][A-Za-z0-9_.]*')


def fields(line):
    """Parse key=value pairs; raise ValueError on anything else."""
    out, i, n = [], 0, len(line)
    while i < n:
        m = KEY.match(line, i)
        if not m or m.end() >= n or line[m.end()] != '=':
            raise ValueError('expected key= at column %d' % i)
        key, i = m.group(0), m.end() + 1
        if i < n and line[i] == '"':
            i += 1
            val = []
            while True:
                if i >= n:
                    raise ValueError('unterminated quoted value of %s' % key)
                c = line[i]
                if c == '\\':
                    if i + 1 >= n:
                        raise ValueError('dangling backslash in %s' % key)
                    val.append(line[i:i + 2])
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    val.append(c)
                    i += 1
            value = ''.join(val)
        else:
            j = i
            while j < n and line[j] != ' ':
                if line[j] in '"=':
                    raise ValueError('bare value of %s holds %r' % (key, line[j]))
                j += 1
            if j == i:
                raise ValueError('empty value of %s' % key)
            value, i = line[i:j], j
        out.append((key, value))
        if i < n:
            if line[i] != ' ':
                raise ValueError('expected a space after %s' % key)
            i += 1
    return out


def main():
    bad = 0
    for path in sys.argv[1:]:
        with open(path, 'rb') as f:
            for no, raw in enumerate(f, 1):
                line = raw.decode('utf-8', 'replace').rstrip('\n')
                m = HEAD.match(line)
                try:
                    if not m:
                        raise ValueError('no ts= level= head')
                    kv = fields(line[m.end():])
                    if not kv or kv[0][0] != 'msg':
                        raise ValueError('msg is not the first field')
                    if any(ord(c) < 0x20 for c in line):
                        raise ValueError('control character in the line')
                except ValueError as e:
                    print('%s:%d: %s: %s' % (path, no, e, line[:200]))
                    bad += 1
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
