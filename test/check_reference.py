#!/usr/bin/env python3
"""Check README.md's function reference against the install script.

Every function and aggregate that src/sql/media_reco.sql creates, except the
aggregates' support functions and the event trigger's function, must have
exactly one row in the README's "### Functions" section, and that row must
give the script's argument names, types and defaults, its result and its
labels (volatility, STRICT, PARALLEL).  No row may name anything else.

    python3 test/check_reference.py [install-script] [README]

Prints one line per function and a summary; exits 1 on any difference.
Needs only the Python standard library.
"""

import re
import sys

ROOT = __file__.rsplit('/test/', 1)[0] if '/test/' in __file__ else '.'
SCRIPT = sys.argv[1] if len(sys.argv) > 1 else ROOT + '/src/sql/media_reco.sql'
README = sys.argv[2] if len(sys.argv) > 2 else ROOT + '/README.md'

# the README abbreviates some types; everything is compared in the script's spelling
ALIASES = {'int': 'integer', 'int4': 'integer', 'int8': 'bigint', 'float8': 'double precision',
           'float4': 'real', 'bool': 'boolean', 'timestamp with time zone': 'timestamptz'}
TYPES = {'integer', 'bigint', 'double precision', 'real', 'boolean', 'text', 'name', 'regclass',
         'jsonb', 'bytea', 'interval', 'timestamptz', 'record', 'internal', 'void', 'event_trigger'}


def statements(sql):
    """Top-level statements of a script, comments removed, quotes respected."""
    out, cur, i, n = [], [], 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith('--', i):
            i = sql.find('\n', i)
            i = n if i < 0 else i
            continue
        if c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c and sql[j + 1:j + 2] == c:
                    j += 2
                elif sql[j] == c:
                    break
                else:
                    j += 1
            cur.append(sql[i:j + 1])
            i = j + 1
            continue
        m = re.match(r'\$[A-Za-z_]*\$', sql[i:])
        if m:
            j = sql.index(m.group(0), i + len(m.group(0)))
            cur.append(sql[i:j + len(m.group(0))])
            i = j + len(m.group(0))
            continue
        if c == ';':
            out.append(re.sub(r'\s+', ' ', ''.join(cur)).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    return [s for s in out if s]


def split_top(s, sep=','):
    """Split at sep outside parentheses, brackets and quotes."""
    parts, depth, cur, q = [], 0, [], None
    for c in s:
        if q:
            q = None if c == q else q
        elif c in "'\"":
            q = c
        elif c in '([':
            depth += 1
        elif c in ')]':
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(''.join(cur).strip())
            cur = []
            continue
        cur.append(c)
    if ''.join(cur).strip():
        parts.append(''.join(cur).strip())
    return parts


def paren(s, start):
    """The text inside the parenthesis opening at s[start], and the index after it."""
    depth, q = 0, None
    for i in range(start, len(s)):
        c = s[i]
        if q:
            q = None if c == q else q
        elif c in "'\"":
            q = c
        elif c == '(':
            depth += 1
        elif c == ')':
            depth -= 1
            if depth == 0:
                return s[start + 1:i], i + 1
    raise ValueError('unbalanced parentheses: ' + s[start:start + 80])


def norm_type(t):
    t = re.sub(r'\s+', ' ', t.strip().lower())
    arr = t.endswith('[]')
    base = t[:-2].strip() if arr else t
    if base.startswith('pg_catalog.'):
        base = base[len('pg_catalog.'):]
    base = ALIASES.get(base, base)
    if base not in TYPES:
        raise ValueError('unknown type %r' % t)
    return base + ('[]' if arr else '')


def parse_arg(a, default_kw):
    """(name, type, default) of one argument; default_kw is 'DEFAULT' or '='."""
    default = None
    m = re.search(r'\s+DEFAULT\s+' if default_kw == 'DEFAULT' else r'\s+=\s+', a)
    if m:
        a, default = a[:m.start()], re.sub(r'\s+', ' ', a[m.end():].strip())
    a = a.strip()
    if a.startswith('"'):
        name, typ = a[1:].split('"', 1)
        return name, norm_type(typ), default
    try:
        return None, norm_type(a), default
    except ValueError:
        name, typ = a.split(None, 1)
        return name, norm_type(typ), default


def parse_result(r):
    r = r.strip()
    if r.upper().startswith('TABLE'):
        cols, _ = paren(r, r.index('('))
        return 'TABLE(' + ', '.join('%s %s' % (c.split(None, 1)[0], norm_type(c.split(None, 1)[1]))
                                    for c in split_top(cols)) + ')'
    return norm_type(r)


def sig_text(name, args):
    return '%s(%s)' % (name, ', '.join(t for _, t, _ in args))


def from_script(path):
    funcs, aggs, support = {}, {}, set()
    for st in statements(open(path).read()):
        m = re.match(r'CREATE (FUNCTION|AGGREGATE) media_reco\.(\w+)\s*\(', st)
        if not m:
            continue
        kind, name = m.groups()
        inner, end = paren(st, m.end() - 1)
        args = [parse_arg(a, 'DEFAULT') for a in split_top(inner)]
        rest = st[end:]
        if kind == 'FUNCTION':
            r = re.match(r'\s*RETURNS\s+(.*?)\s+(AS|LANGUAGE)\s', rest)
            lang = re.search(r'\sLANGUAGE\s+\w+((?:\s+(?:IMMUTABLE|STABLE|VOLATILE|STRICT|PARALLEL\s+\w+|'
                             r'SECURITY\s+\w+))*)', rest)
            words = lang.group(1).split()
            vol = next((w for w in words if w in ('IMMUTABLE', 'STABLE', 'VOLATILE')), 'VOLATILE')
            par = words[words.index('PARALLEL') + 1] if 'PARALLEL' in words else 'UNSAFE'
            labels = '%s, %sPARALLEL %s' % (vol, 'STRICT, ' if 'STRICT' in words else '', par)
            funcs[sig_text(name, args)] = dict(name=name, args=args, result=parse_result(r.group(1)),
                                               labels=labels, aggregate=False)
        else:
            opts, _ = paren(rest, rest.index('('))
            o = {k.strip().upper(): v.strip() for k, v in (x.split('=', 1) for x in split_top(opts))}
            for k in ('SFUNC', 'FINALFUNC', 'COMBINEFUNC', 'SERIALFUNC', 'DESERIALFUNC'):
                if k in o:
                    support.add(o[k].replace('media_reco.', ''))
            aggs[sig_text(name, args)] = dict(name=name, args=args, final=o.get('FINALFUNC'),
                                              stype=o['STYPE'], labels='PARALLEL %s' % o.get('PARALLEL', 'UNSAFE').upper(),
                                              aggregate=True)
    # an aggregate's result is its final function's
    by_name = {}
    for f in funcs.values():
        by_name.setdefault(f['name'], []).append(f)
    for a in aggs.values():
        a['result'] = (by_name[a['final'].replace('media_reco.', '')][0]['result'] if a['final']
                       else norm_type(a['stype']))
    public, internal = {}, []
    for sig, f in list(funcs.items()) + list(aggs.items()):
        if f['name'] in support or f['result'] == 'event_trigger':
            internal.append(sig)
        else:
            public[sig] = f
    return public, internal


def from_readme(path):
    text = open(path).read()
    a = text.index('\n### Functions\n')
    b = text.index('\n### ', a + 1)
    rows = []
    for line in text[a:b].split('\n'):
        if not line.startswith('| `'):
            continue
        cells = [c.strip() for c in re.split(r'(?<!\\)\|', line)[1:-1]]
        if len(cells) != 2:
            raise ValueError('not a Function | Description row: ' + line[:80])
        m = re.match(r'`(\w+)\((.*)\)`( \(aggregate\))? → `(.*)`$', cells[0])
        if not m:
            raise ValueError('function cell not `name(args)` → `result`: ' + cells[0][:80])
        name, inner, agg, result = m.groups()
        args = [parse_arg(x, '=') for x in split_top(inner)]
        lab = re.search(r'\*([A-Z ,]+)\.\*$', cells[1])
        rows.append(dict(name=name, args=args, result=parse_result(result), aggregate=bool(agg),
                         labels=lab.group(1) if lab else None, sig=sig_text(name, args)))
    return rows


def main():
    public, internal = from_script(SCRIPT)
    rows = from_readme(README)
    problems = []
    seen = {}
    for r in rows:
        seen.setdefault(r['sig'], []).append(r)
    for sig in sorted(seen):
        if len(seen[sig]) > 1:
            problems.append('%s: %d rows' % (sig, len(seen[sig])))
        if sig not in public:
            problems.append('%s: in the README but not a public function of the script' % sig)
    for sig, f in sorted(public.items()):
        if sig not in seen:
            problems.append('%s: no README row' % sig)
            continue
        r = seen[sig][0]
        bad = []
        if [(n, d) for n, _, d in r['args']] != [(n, d) for n, _, d in f['args']]:
            bad.append('arguments %s, script %s' % ([(n, d) for n, _, d in r['args']],
                                                    [(n, d) for n, _, d in f['args']]))
        if r['result'] != f['result']:
            bad.append('result %s, script %s' % (r['result'], f['result']))
        if r['labels'] != f['labels']:
            bad.append('labels %s, script %s' % (r['labels'], f['labels']))
        if r['aggregate'] != f['aggregate']:
            bad.append('aggregate %s, script %s' % (r['aggregate'], f['aggregate']))
        for b in bad:
            problems.append('%s: %s' % (sig, b))
        print('%-4s %s%s  [%s]' % ('ok' if not bad else 'BAD', sig,
                                   ' (aggregate)' if f['aggregate'] else '', f['labels']))
    print('internal, not in the table: ' + ', '.join(sorted(internal)))
    for p in problems:
        print('PROBLEM: ' + p)
    print('reference: %d public functions in the script, %d README rows, %d internal, %d problems'
          % (len(public), len(rows), len(internal), len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
