#!/usr/bin/env python3
"""Power-loss checker: rebuild the disk states a power cut could leave during
a recorded run of sessiond, write each out as a real folder, and check the
store's promises on it. See README.md in this folder for the models.

  check.py REC [--model posix|ext4|both] [--cap N] [--fsck N] [--json OUT]

REC is a folder made by record.sh. Prints a summary; exit status 0 when no
state breaks a promise, 1 when some do, 2 when the recording cannot be
checked (the self-check failed, or the trace has a call it cannot model)."""
import argparse
import base64
import hashlib
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

KEY_RE = re.compile(r"^[A-Z0-9]{8}$")
TMP_RE = re.compile(r"^\..*\.tmp$")
# a session's spare (.KEY.spare): the inode a save writes and then exchanges
# with KEY.json; after a crash it may hold anything (I1-I3 in store.c)
SPARE_RE = re.compile(r"^\.([A-Z0-9]{8})\.spare$")
LINE_RE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
RET_RE = re.compile(r"^\s*=\s*(-?\d+|0x[0-9a-f]+|\?)[^<]*(?:<(\d+\.\d+)>)?\s*$")
AT_FDCWD = "AT_FDCWD"


class Unmodelled(Exception):
    pass


# ---------------------------------------------------------------- trace parsing

def split_args(s):
    """Top-level comma split of a syscall's argument text."""
    out, depth, cur, i = [], 0, [], 0
    in_str = False
    while i < len(s):
        ch = s[i]
        if in_str:
            cur.append(ch)
            if ch == "\\":
                cur.append(s[i + 1])
                i += 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            cur.append(ch)
        elif ch in "[{(":
            depth += 1
            cur.append(ch)
        elif ch in "]})":
            depth -= 1
            cur.append(ch)
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    if cur or out:
        out.append("".join(cur).strip())
    return out


def decode_str(tok):
    """A -xx string argument ("\\x2f\\x74...") to bytes; None when truncated."""
    if not tok.startswith('"'):
        raise Unmodelled(f"not a string argument: {tok[:60]}")
    end = tok.rfind('"')
    if tok[end + 1:].startswith("..."):
        raise Unmodelled("strace truncated a string: raise -s")
    body = tok[1:end]
    return bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-f]{2})", body))


def parse_trace(path):
    """[(start, end, pid, name, args, ret)] in file order."""
    calls, pending = [], {}
    with open(path, "r", errors="replace") as fh:
        for line in fh:
            m = LINE_RE.match(line.rstrip("\n"))
            if not m:
                continue
            pid, ts, rest = int(m.group(1)), float(m.group(2)), m.group(3)
            if rest.endswith("<unfinished ...>"):
                pending[pid] = (ts, rest[: -len("<unfinished ...>")].rstrip())
                continue
            if rest.startswith("<... "):
                mm = re.match(r"<\.\.\. (\w+) resumed>(.*)$", rest)
                if not mm or pid not in pending:
                    continue
                ts, head = pending.pop(pid)
                rest = head + mm.group(2)
            if rest.startswith("+++") or rest.startswith("---"):
                continue
            mm = re.match(r"^(\w+)\((.*)$", rest)
            if not mm:
                continue
            name, tail = mm.group(1), mm.group(2)
            ends = list(re.finditer(r"\)\s+= ", tail))
            if not ends:
                continue      # killed inside the call (exit): no result
            cut = ends[-1].start()
            rm = RET_RE.match(tail[cut + 1:])
            if not rm:
                continue
            ret = rm.group(1)
            ret = -1 if ret == "?" else int(ret, 0)
            dur = float(rm.group(2)) if rm.group(2) else 0.0
            calls.append((ts, ts + dur, pid, name, split_args(tail[:cut]), ret))
    return calls


# ---------------------------------------------------------------- the model

class Op:
    """One change to files or folder entries, or one fsync.
    kind: 'entry' (changes: [(dir, name, inode or None)]), 'write' (ino, off,
    data), 'trunc' (ino, size), 'fsync' (ino)."""
    __slots__ = ("i", "kind", "start", "end", "changes", "ino", "off", "data", "size", "what")

    def __init__(self, kind, start, end, **kw):
        self.kind, self.start, self.end = kind, start, end
        self.changes, self.ino, self.off, self.data, self.size = None, None, 0, b"", 0
        self.what = ""
        for k, v in kw.items():
            setattr(self, k, v)


class Recording:
    def __init__(self, rec):
        self.rec = rec
        with open(os.path.join(rec, "meta.json")) as fh:
            self.meta = json.load(fh)
        self.base = self.meta["base"]
        with open(os.path.join(rec, "snapshot.json")) as fh:
            snap = json.load(fh)
        # inode 0 is the folder holding DATA_DIR; its name is durable
        self.kind = {0: "d"}
        self.base_entries = {0: {}}
        self.base_data = {}
        self.next_ino = 1
        for d in sorted(snap["dirs"], key=lambda p: p.count("/")):
            self._base_add(d, "d", None)
        for f, b64 in snap["files"].items():
            self._base_add(f, "f", base64.b64decode(b64))
        self.requests = []
        with open(os.path.join(rec, "requests.jsonl")) as fh:
            for line in fh:
                self.requests.append(json.loads(line))
        self.snapshot_files = {f: base64.b64decode(b) for f, b in snap["files"].items()}
        self.ops = []
        self._build_ops(parse_trace(os.path.join(rec, "trace")))

    def _base_add(self, rel, kind, data):
        parts = rel.split("/")
        d = 0
        for p in parts[:-1]:
            d = self.base_entries[d][p]
        ino = self.next_ino
        self.next_ino += 1
        self.kind[ino] = kind
        self.base_entries[d][parts[-1]] = ino
        if kind == "d":
            self.base_entries[ino] = {}
        else:
            self.base_data[ino] = data

    # -- the live model while reading the trace: names resolve as they did then
    def _resolve(self, path, parent=False):
        """(dir inode, last name) for parent=True, else inode or None. None
        for a path outside the base folder."""
        base = self.base.rstrip("/")
        if path != base and not path.startswith(base + "/"):
            return None
        rest = path[len(base):].strip("/")
        parts = [p for p in rest.split("/") if p and p != "."] if rest else []
        if ".." in parts:
            raise Unmodelled(f"'..' in {path}")
        if parent:
            if not parts:
                return None
            d = 0
            for p in parts[:-1]:
                d = self.live[d].get(p)
                if d is None or self.kind[d] != "d":
                    raise Unmodelled(f"no folder on the way to {path}")
            return d, parts[-1]
        ino = 0
        for p in parts:
            ino = self.live.get(ino, {}).get(p)
            if ino is None:
                return None
        return ino

    def _path(self, dirfd, tok):
        p = decode_str(tok).decode("utf-8", "surrogateescape")
        if p.startswith("/"):
            return os.path.normpath(p)
        if dirfd == AT_FDCWD:
            raise Unmodelled(f"relative path {p}")
        fd = int(dirfd)
        if fd not in self.fds:
            return "/untracked/" + p
        return os.path.normpath(self.fds[fd]["path"] + "/" + p)

    @staticmethod
    def _link_source(a):
        """For linkat's arguments a: the descriptor whose inode it names
        (AT_EMPTY_PATH with an empty path; /proc/self/fd/N with
        AT_SYMLINK_FOLLOW), else None (an ordinary link of a path)."""
        flags = set(a[4].split("|")) if len(a) > 4 else set()
        if "AT_EMPTY_PATH" in flags and decode_str(a[1]) == b"":
            return int(a[0])
        if "AT_SYMLINK_FOLLOW" in flags:
            m = re.match(rb"^/proc/(?:self|thread-self)/fd/(\d+)$", decode_str(a[1]))
            if m:
                return int(m.group(1))
        return None

    def _entry(self, start, end, changes, what):
        for d, name, ino in changes:
            if ino is None:
                self.live[d].pop(name, None)
            else:
                self.live[d][name] = ino
        self.ops.append(Op("entry", start, end, changes=changes, what=what))

    def _new_inode(self, kind):
        ino = self.next_ino
        self.next_ino += 1
        self.kind[ino] = kind
        if kind == "d":
            self.live[ino] = {}
        else:
            self.size[ino] = 0
        return ino

    def _build_ops(self, calls):
        self.live = {d: dict(e) for d, e in self.base_entries.items()}
        self.size = {i: len(b) for i, b in self.base_data.items()}
        self.fds = {}
        # Calls in the order they finished: a crash after call k has seen
        # exactly the calls that returned by then.
        calls = sorted(calls, key=lambda c: c[1])
        for start, end, pid, name, a, ret in calls:
            if ret < 0 and name not in ("close",):
                continue
            if name in ("open", "openat", "creat"):
                dirfd = AT_FDCWD
                if name == "openat":
                    dirfd, a = a[0], a[1:]
                path = self._path(dirfd, a[0])
                flags = "O_CREAT|O_TRUNC|O_WRONLY" if name == "creat" else a[1]
                if "O_TMPFILE" in flags:
                    # an inode with no name, in the folder at path: no entry
                    # changes until a linkat names it (see _link_source)
                    d = self._resolve(path)
                    if d is None:
                        continue
                    if self.kind[d] != "d":
                        raise Unmodelled(f"O_TMPFILE open of a file: {path}")
                    self.fds[ret] = {"ino": self._new_inode("f"), "path": path + "/(O_TMPFILE)",
                                     "pos": [0], "append": False, "opened": end}
                    continue
                if self._resolve(path) == 0:       # the base folder itself
                    self.fds[ret] = {"ino": 0, "path": path, "pos": [0], "append": False,
                                     "opened": end}
                    continue
                loc = self._resolve(path, parent=True)
                if loc is None:
                    continue
                d, nm = loc
                ino = self.live[d].get(nm)
                if ino is None:
                    if "O_CREAT" not in flags:
                        continue
                    ino = self._new_inode("f")
                    self._entry(start, end, [(d, nm, ino)], "create " + path)
                elif "O_TRUNC" in flags and self.kind[ino] == "f" and self.size[ino]:
                    self.size[ino] = 0
                    self.ops.append(Op("trunc", start, end, ino=ino, size=0))
                self.fds[ret] = {"ino": ino, "path": path, "pos": [0],
                                 "append": "O_APPEND" in flags, "opened": end}
            elif name in ("write", "pwrite64"):
                f = self.fds.get(int(a[0]))
                if not f:
                    continue
                data = decode_str(a[1])[:ret]
                ino = f["ino"]
                if self.kind[ino] != "f":
                    raise Unmodelled(f"{name} to a folder: {f['path']}")
                if name == "pwrite64":
                    off = int(a[3])
                else:
                    off = self.size[ino] if f["append"] else f["pos"][0]
                    f["pos"][0] = off + len(data)
                self.size[ino] = max(self.size[ino], off + len(data))
                self.ops.append(Op("write", start, end, ino=ino, off=off, data=data))
            elif name in ("writev", "pwritev", "pwritev2", "fallocate", "sync_file_range",
                          "truncate", "symlink", "symlinkat"):
                if name in ("truncate", "symlink", "symlinkat"):
                    raise Unmodelled(f"{name} is not modelled")
                if int(a[0]) in self.fds:
                    raise Unmodelled(f"{name} on a file of the store is not modelled")
            elif name == "ftruncate":
                f = self.fds.get(int(a[0]))
                if f:
                    self.size[f["ino"]] = int(a[1])
                    self.ops.append(Op("trunc", start, end, ino=f["ino"], size=int(a[1])))
            elif name in ("fsync", "fdatasync"):
                f = self.fds.get(int(a[0]))
                if f:
                    self.ops.append(Op("fsync", start, end, ino=f["ino"]))
            elif name in ("sync", "syncfs"):
                self.ops.append(Op("fsync", start, end, ino=None))
            elif name in ("mkdir", "mkdirat"):
                path = self._path(a[0] if name == "mkdirat" else AT_FDCWD,
                                  a[1] if name == "mkdirat" else a[0])
                loc = self._resolve(path, parent=True)
                if loc is None:
                    continue
                ino = self._new_inode("d")
                self._entry(start, end, [(loc[0], loc[1], ino)], "mkdir " + path)
            elif name in ("unlink", "unlinkat", "rmdir"):
                path = self._path(a[0] if name == "unlinkat" else AT_FDCWD,
                                  a[1] if name == "unlinkat" else a[0])
                loc = self._resolve(path, parent=True)
                if loc is None:
                    continue
                self._entry(start, end, [(loc[0], loc[1], None)], "unlink " + path)
            elif name in ("link", "linkat", "rename", "renameat", "renameat2"):
                flags = set(a[4].split("|")) if name == "renameat2" and len(a) > 4 else set()
                flags.discard("0")
                if flags - {"RENAME_NOREPLACE", "RENAME_EXCHANGE"} or \
                        flags >= {"RENAME_NOREPLACE", "RENAME_EXCHANGE"}:
                    raise Unmodelled(f"renameat2 with flags {'|'.join(sorted(flags))}")
                fd = self._link_source(a) if name == "linkat" else None
                if fd is not None:
                    # a name for an open descriptor's inode (an O_TMPFILE
                    # file): linkat(fd, "", .., AT_EMPTY_PATH), or through
                    # /proc/self/fd/N with AT_SYMLINK_FOLLOW
                    dst = self._path(a[2], a[3])
                    t = self._resolve(dst, parent=True)
                    if t is None:
                        continue
                    if fd not in self.fds:
                        raise Unmodelled(f"linkat of descriptor {fd}, which the trace did not open, to {dst}")
                    self._entry(start, end, [(t[0], t[1], self.fds[fd]["ino"])],
                                f"link {self.fds[fd]['path']} (fd {fd}) -> {dst}")
                    continue
                if name in ("linkat", "renameat", "renameat2"):
                    src, dst = self._path(a[0], a[1]), self._path(a[2], a[3])
                else:
                    src, dst = self._path(AT_FDCWD, a[0]), self._path(AT_FDCWD, a[1])
                s, t = self._resolve(src, parent=True), self._resolve(dst, parent=True)
                if s is None and t is None:
                    continue
                if s is None or t is None:
                    raise Unmodelled(f"{name} across the base folder: {src} -> {dst}")
                ino = self.live[s[0]][s[1]]
                if name.startswith("link"):
                    self._entry(start, end, [(t[0], t[1], ino)], f"link {src} -> {dst}")
                elif "RENAME_EXCHANGE" in flags:
                    # one atomic change of two entries: each name gets the
                    # other's inode (both exist, or the call failed)
                    self._entry(start, end, [(s[0], s[1], self.live[t[0]][t[1]]), (t[0], t[1], ino)],
                                f"exchange {src} <-> {dst}")
                else:
                    self._entry(start, end, [(s[0], s[1], None), (t[0], t[1], ino)],
                                f"rename {src} -> {dst}")
            elif name == "close":
                # The number is free once close starts (even when it fails),
                # and another thread's open may get it back before this close
                # returns: forget only a descriptor opened before then.
                f = self.fds.get(int(a[0]))
                if f and f["opened"] <= start:
                    del self.fds[int(a[0])]
            elif name == "close_range":
                lo, hi = int(a[0]), int(a[1])
                for fd in [fd for fd in self.fds if lo <= fd <= hi and self.fds[fd]["opened"] <= start]:
                    del self.fds[fd]
            elif name in ("dup", "dup2", "dup3") or (name == "fcntl" and "F_DUPFD" in a[1]):
                old = int(a[0])
                if name in ("dup2", "dup3"):
                    self.fds.pop(ret, None)
                if old in self.fds:
                    self.fds[ret] = dict(self.fds[old], opened=end)
        for i, op in enumerate(self.ops):
            op.i = i


# ---------------------------------------------------------------- states

def is_temp(name):
    return bool(TMP_RE.match(name))


class Replayer:
    """Applies a chosen subset of the ops to the durable starting point."""

    def __init__(self, r):
        self.r = r

    def run(self, applied):
        """applied: [(op, variant)] in op order; variant None, 'half', 'zero'."""
        r = self.r
        ent = {d: dict(e) for d, e in r.base_entries.items()}
        data = {i: bytearray(b) for i, b in r.base_data.items()}
        origin = {}     # (dir, name) -> the call that gave the name its inode
        for op, var in applied:
            if op.kind == "entry":
                for d, name, ino in op.changes:
                    ent.setdefault(d, {})
                    origin[(d, name)] = op.what.split(" ", 1)[0]
                    if ino is None:
                        ent[d].pop(name, None)
                    else:
                        ent[d][name] = ino
                        if r.kind[ino] == "d":
                            ent.setdefault(ino, {})
                        else:
                            data.setdefault(ino, bytearray())
            elif op.kind == "write":
                b = data.setdefault(op.ino, bytearray())
                w = op.data
                if var == "half":
                    w = w[: len(w) // 2]
                elif var == "zero":
                    w = bytes(len(w))
                if len(b) < op.off:
                    b.extend(bytes(op.off - len(b)))
                b[op.off:op.off + len(w)] = w
            elif op.kind == "trunc":
                b = data.setdefault(op.ino, bytearray())
                del b[op.size:]
                if len(b) < op.size:
                    b.extend(bytes(op.size - len(b)))
        # walk from the base folder: what a mount after the crash would show
        tree = {}
        self.via = {}   # path -> how its name got its inode ("base" before the run)

        def walk(d, prefix):
            for name, ino in ent.get(d, {}).items():
                p = prefix + name
                self.via[p] = origin.get((d, name), "base")
                if r.kind[ino] == "d":
                    tree[p] = None
                    walk(ino, p + "/")
                else:
                    tree[p] = bytes(data.get(ino, b""))
        walk(0, "")
        return tree


def tree_digest(tree, relevant_only):
    h = hashlib.sha256()
    for p in sorted(tree):
        if relevant_only and is_temp(os.path.basename(p)):
            continue
        h.update(p.encode() + b"\0")
        if relevant_only and SPARE_RE.match(os.path.basename(p)):
            continue      # no check reads a spare: only whether it is there counts
        h.update(b"D" if tree[p] is None else b"F" + hashlib.sha256(tree[p]).digest())
    return h.hexdigest()


def materialize(tree, top):
    os.makedirs(top)
    for p in sorted(tree):
        full = os.path.join(top, p)
        if tree[p] is None:
            os.makedirs(full, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as fh:
                fh.write(tree[p])


def read_real(top):
    tree = {}
    for root, dnames, fnames in os.walk(top):
        rel = os.path.relpath(root, top)
        for d in dnames:
            tree[os.path.normpath(os.path.join(rel, d))] = None
        for f in fnames:
            with open(os.path.join(root, f), "rb") as fh:
                tree[os.path.normpath(os.path.join(rel, f))] = fh.read()
    return tree


class Checker:
    def __init__(self, r, cap, seed=14):
        self.r = r
        self.cap = cap
        self.rnd = random.Random(seed)
        self.rep = Replayer(r)
        self.ops = r.ops
        n = len(self.ops)
        self.data_rel = r.meta["data"]
        # which inodes ever carry a session's name (or are folders): only
        # changes to those can affect a check
        self.named = set(i for i, k in r.kind.items() if k == "d")
        for op in self.ops:
            if op.kind == "entry":
                for d, name, ino in op.changes:
                    if ino is not None and not is_temp(name):
                        self.named.add(ino)
        # durable_at[j]: the first crash point at which op j is on disk for
        # sure under POSIX (an fsync of its file, or of its folder, that
        # started after op j ended has returned).
        inf = n + 1
        self.durable_at = [inf] * n
        for f in self.ops:
            if f.kind != "fsync":
                continue
            for j in range(f.i):
                op = self.ops[j]
                if op.end >= f.start:
                    continue
                if f.ino is None:
                    self.durable_at[j] = min(self.durable_at[j], f.i)
                elif op.kind in ("write", "trunc") and op.ino == f.ino:
                    self.durable_at[j] = min(self.durable_at[j], f.i)
            # folder entries: a rename is on disk once every folder it
            # touches has been synced after it
        for j, op in enumerate(self.ops):
            if op.kind != "entry":
                continue
            worst = -1
            for d in set(c[0] for c in op.changes):
                best = inf
                for f in self.ops[j + 1:]:
                    if f.kind == "fsync" and (f.ino == d or f.ino is None) and f.start > op.end:
                        best = f.i
                        break
                worst = max(worst, best)
            self.durable_at[j] = min(self.durable_at[j], worst)
        # ext4 ordered: an fsync of anything commits the journal, which holds
        # every change that ended before the fsync started
        self.journal_at = [0] * n      # ops[:journal_at[k]] are on disk at crash point k
        done = 0
        for k, op in enumerate(self.ops):
            if op.kind == "fsync":
                done = max(done, sum(1 for o in self.ops[:k] if o.end < op.start))
            self.journal_at[k] = done
        self._acks()
        self.state_results = {}
        self.unique_dirs = 0
        # states are many small folders: a memory file system when there is one
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.work = tempfile.mkdtemp(prefix="sessiond-crash-", dir=shm)

    # -- what a client was told, and what it sent
    def _acks(self):
        self.acks = []          # (answered, key, version)
        self.sent = {}          # key -> [data sent]
        self.deletes = {}       # key -> (sent, answered when acknowledged, else None)
        for q in self.r.requests:
            if q["op"] == "delete":
                self.deletes[q["key"]] = (q["sent"], q["answered"] if q["status"] == 200 else None)
                continue
            if q.get("key"):
                self.sent.setdefault(q["key"], []).append(q["data"])
            ok = (q["op"] == "create" and q["status"] == 201) or (q["op"] == "save" and q["status"] == 200)
            if ok and q.get("version"):
                self.acks.append((q["answered"], q["key"], q["version"]))
        self.acks.sort()
        # every byte string sessiond ever put under a session's name, plus
        # what was there before the run
        self.written = {}
        for rel, b in self.r.snapshot_files.items():
            self.written.setdefault(os.path.basename(rel), set()).add(b)
        content = {i: bytearray(b) for i, b in self.r.base_data.items()}
        for op in self.ops:
            if op.kind == "write":
                b = content.setdefault(op.ino, bytearray())
                if len(b) < op.off:
                    b.extend(bytes(op.off - len(b)))
                b[op.off:op.off + len(op.data)] = op.data
            elif op.kind == "trunc":
                b = content.setdefault(op.ino, bytearray())
                del b[op.size:]
                b.extend(bytes(op.size - len(b)))
            elif op.kind == "entry":
                for d, name, ino in op.changes:
                    if ino is not None and not is_temp(name) and self.r.kind[ino] == "f":
                        self.written.setdefault(name, set()).add(bytes(content.get(ino, b"")))

    # -- the three checks on one state folder
    def check_dir(self, top, via=None):
        """(problems, versions, strays) for the state at folder top. problems:
        list of (kind, text) for checks 1 and 3; versions: key -> stored
        version; strays: spares whose session is missing (not a broken
        promise, but sessionctl fsck reports them). via: path (relative to
        top) -> the call that gave that name its inode, for the texts."""
        problems, versions, strays = [], {}, []
        files, spares = set(), set()    # keys with a KEY.json (any content), with a spare
        self.last_names = files, spares
        sess = os.path.join(top, self.data_rel, "sessions")
        if not os.path.isdir(sess):
            return problems, versions, strays
        for fan in sorted(os.listdir(sess)):
            fp = os.path.join(sess, fan)
            if not os.path.isdir(fp):
                continue
            names = sorted(os.listdir(fp))
            for name in names:
                if is_temp(name):
                    continue
                sp = SPARE_RE.match(name)
                if sp:
                    # any content is fine (an older version, a save's torn
                    # bytes, nothing); only its session must be there
                    spares.add(sp.group(1))
                    if sp.group(1)[:2] != fan or sp.group(1) + ".json" not in names:
                        strays.append(f"{fan}/{name}: a spare without its session")
                    continue
                with open(os.path.join(fp, name), "rb") as fh:
                    raw = fh.read()
                key = name[:-5] if name.endswith(".json") else None
                files.add(key)
                how = (via or {}).get(os.path.join(self.data_rel, "sessions", fan, name))
                where = f"{fan}/{name}" + (f" (named by {how})" if how else "")
                if not key or not KEY_RE.match(key) or key[:2] != fan:
                    problems.append(("invalid", f"{where}: not a session file name"))
                    continue
                try:
                    doc = json.loads(raw)
                except ValueError:
                    problems.append(("torn", f"{where}: does not parse ({len(raw)} bytes)"))
                    continue
                bad = self._invalid(doc, key)
                if bad:
                    problems.append(("invalid", f"{where}: {bad}"))
                    continue
                if raw not in self.written.get(name, ()):
                    problems.append(("garbage", f"{where}: bytes sessiond never wrote for it"))
                    continue
                if doc["data"] not in self.sent.get(key, []) and \
                        not any(raw == b for b in self.r.snapshot_files.values()):
                    problems.append(("garbage", f"{where}: data no client sent"))
                    continue
                versions[key] = doc["version"]
        return problems, versions, strays

    @staticmethod
    def _invalid(doc, key):
        if not isinstance(doc, dict):
            return "not an object"
        if doc.get("key") != key:
            return f"carries key {doc.get('key')!r}"
        v = doc.get("version")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            return "bad version"
        for f in ("created", "updated"):
            if not isinstance(doc.get(f), str):
                return f"bad {f}"
        if not isinstance(doc.get("meta"), dict):
            return "bad meta"
        if "data" not in doc:
            return "no data"
        return None

    def state(self, applied):
        """Replay, write out (once per distinct content) and check."""
        tree = self.rep.run(applied)
        dg = tree_digest(tree, relevant_only=True)
        res = self.state_results.get(dg)
        if res is None:
            top = os.path.join(self.work, f"s{len(self.state_results)}")
            materialize(tree, top)
            probs, versions, strays = self.check_dir(top, self.rep.via)
            res = {"dir": top, "problems": probs, "versions": versions, "strays": strays,
                   "files": self.last_names[0], "spares": self.last_names[1]}
            self.state_results[dg] = res
        return dg, res

    def lost(self, res, t):
        """Changes acknowledged before time t that the state does not show:
        a version missing (or older), or a deleted session (or its spare)
        still there. While a delete is in flight, no session is as good as
        the acknowledged version."""
        out = []
        latest = {}
        for ans, key, v in self.acks:
            if ans >= t:
                break
            latest[key] = max(latest.get(key, 0), v)
        for key, (sent, acked) in self.deletes.items():
            if acked is not None and acked < t:
                latest.pop(key, None)
                left = [w for w, there in (("the session file", key in res["files"]),
                                           ("its spare", key in res["spares"])) if there]
                if left:
                    out.append(f"{key} deletion acknowledged, state has {' and '.join(left)}")
            elif sent < t and key in latest and key not in res["files"]:
                latest.pop(key)
        for key, v in latest.items():
            have = res["versions"].get(key)
            if have is None or have < v:
                out.append(f"{key} v{v} acknowledged, state has {'none' if have is None else 'v%d' % have}")
        return out

    # -- choices at crash point k under POSIX
    def posix_candidates(self, k):
        forced, units = [], []
        pend_data = {}
        for op in self.ops[:k + 1]:
            j = op.i
            if self.durable_at[j] <= k or op.kind == "fsync":
                forced.append(j)
                continue
            if op.kind == "entry":
                relevant = any(not is_temp(name) or (ino is not None and self.r.kind[ino] == "d")
                               for d, name, ino in op.changes)
                if relevant:
                    units.append(("entry", j))
                else:
                    forced.append(j)       # a temporary name only: no check looks at it
            else:
                if op.ino in self.named:
                    pend_data.setdefault(op.ino, []).append(j)
                else:
                    forced.append(j)       # data of a file that never holds a session name
        for ino, js in pend_data.items():
            units.append(("data", js))
        units.sort(key=lambda u: u[1] if u[0] == "entry" else u[1][0])

        def choices(u):
            if u[0] == "entry":
                return [("drop",), ("keep",)]
            js = u[1]
            out = [("prefix", m) for m in range(len(js) + 1)]
            for m in range(len(js)):
                if self.ops[js[m]].kind == "write":
                    out += [("torn", m, "half"), ("torn", m, "zero")]
            return out
        ch = [choices(u) for u in units]
        total = 1
        for c in ch:
            total *= len(c)
        keep = [c[-1] if c[0] == ("drop",) else ("prefix", len(u[1])) for u, c in zip(units, ch)]
        lose = [c[0] for c in ch]
        if total <= self.cap:
            combos = list(itertools.product(*ch)) if units else [()]
            exhaustive = True
        else:
            exhaustive = False
            combos = {tuple(lose), tuple(keep)}
            for i, c in enumerate(ch):
                for alt in c:
                    combos.add(tuple(keep[:i] + [alt] + keep[i + 1:]))   # each one dropped/torn
                    combos.add(tuple(lose[:i] + [alt] + lose[i + 1:]))   # each one alone
            for m in range(len(units) + 1):
                combos.add(tuple(keep[:m] + lose[m:]))                   # every prefix
            combos = sorted(combos)
        out = []
        for combo in combos:
            applied = {j: None for j in forced}
            for u, c in zip(units, combo):
                if u[0] == "entry":
                    if c[0] == "keep":
                        applied[u[1]] = None
                else:
                    js = u[1]
                    n_keep = c[1]
                    for j in js[:n_keep]:
                        applied[j] = None
                    if c[0] == "torn":
                        applied[js[n_keep]] = c[2]
            out.append([(self.ops[j], applied[j]) for j in sorted(applied)])
        return out, exhaustive, total

    def ext4_candidates(self, k):
        out = []
        for c in range(self.journal_at[k], k + 2):
            base = [(op, None) for op in self.ops[:c]]
            out.append(base)
            if c > 0 and self.ops[c - 1].kind == "write" and self.ops[c - 1].ino in self.named:
                for var in ("half", "zero"):
                    out.append(base[:-1] + [(self.ops[c - 1], var)])
        return out

    def run(self, models):
        n = len(self.ops)
        report = {}
        for model in models:
            seen_pairs = set()
            states = 0
            exhaustive_points = 0
            viol = []
            for k in range(-1, n):
                t = self.ops[k + 1].end if k + 1 < n else float("inf")
                if k < 0:
                    cands, exh = [[]], True
                elif model == "posix":
                    cands, exh, _ = self.posix_candidates(k)
                else:
                    cands, exh = self.ext4_candidates(k), True
                exhaustive_points += exh
                for applied in cands:
                    dg, res = self.state(applied)
                    states += 1
                    if (dg, k) in seen_pairs:
                        continue
                    seen_pairs.add((dg, k))
                    found = [f"{kind}: {txt}" for kind, txt in res["problems"]]
                    found += ["lost: " + x for x in self.lost(res, t)]
                    if found:
                        after = self.ops[k].what or self.ops[k].kind if k >= 0 else "start"
                        viol.append({"crash_point": k, "after": after, "state": res["dir"],
                                     "problems": found})
            report[model] = {"crash_points": n + 1, "states": states,
                             "exhaustive_points": exhaustive_points,
                             "violating_states": len(viol), "violations": viol[:20],
                             "kinds": sorted(set(p.split(":")[0] for v in viol for p in v["problems"])),
                             # how the damaged files got their names (exchange, rename, link, ...)
                             "named_by": sorted(set(x for v in viol for p in v["problems"]
                                                    for x in re.findall(r"\(named by (\w+)\)", p)))}
        report["distinct_states_written"] = len(self.state_results)
        return report

    def self_check(self):
        tree = self.rep.run([(op, None) for op in self.ops])
        real = read_real(self.r.base)
        if tree != real:
            diff = sorted(set(tree) ^ set(real)) + sorted(p for p in set(tree) & set(real) if tree[p] != real[p])
            return f"replaying the whole trace does not give the real folder: {diff[:8]}"
        return None

    def fsck(self, sessionctl, n):
        """Run sessionctl fsck on up to n written states (every state with a
        damaged file first, then a fixed-seed sample); compare with check 1."""
        res = list(self.state_results.values())
        bad = [x for x in res if x["problems"] or x["strays"]]
        good = [x for x in res if not (x["problems"] or x["strays"])]
        self.rnd.shuffle(good)
        sample = (bad[: n // 2] + good)[:n]
        agree = disagree = damaged = orphans = 0
        notes = []
        for x in sample:
            data = os.path.join(x["dir"], self.data_rel)
            if not os.path.isdir(os.path.join(data, "sessions")):
                continue          # no store at all: fsck says so; nothing to compare
            p = subprocess.run([sessionctl, "--data-dir", data, "fsck"], capture_output=True, text=True)
            fsck_clean = p.returncode == 0
            # fsck finds torn or invalid session files, and spares whose
            # session is missing (strays); a spare's content is never its
            # business (the next save overwrites it)
            mine_damaged = any(k in ("torn", "invalid") for k, _ in x["problems"])
            mine_clean = not mine_damaged and not x["strays"]
            damaged += mine_damaged
            orphans += bool(x["strays"])
            if fsck_clean == mine_clean:
                agree += 1
            else:
                disagree += 1
                notes.append(f"{x['dir']}: fsck exit {p.returncode}, checker {(x['problems'] + x['strays'])[:2]}")
        return {"sampled": agree + disagree, "damaged": damaged, "orphan_spares": orphans, "agree": agree,
                "disagree": disagree, "notes": notes[:5]}

    def cleanup(self):
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rec")
    ap.add_argument("--model", default="both", choices=["posix", "ext4", "both"])
    ap.add_argument("--cap", type=int, default=256,
                    help="largest number of combinations taken exhaustively at one crash point")
    ap.add_argument("--fsck", type=int, default=0, help="run sessionctl fsck on this many states")
    ap.add_argument("--sessionctl", default=os.environ.get("SESSIONCTL", "build/sessionctl"))
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true", help="keep the state folders")
    a = ap.parse_args()
    try:
        r = Recording(a.rec)
    except Unmodelled as e:
        print(f"check: cannot model the trace: {e}")
        return 2
    c = Checker(r, a.cap)
    try:
        err = c.self_check()
        if err:
            print("check: self-check FAILED: " + err)
            return 2
        models = ["posix", "ext4"] if a.model == "both" else [a.model]
        rep = c.run(models)
        rep["ops"] = len(r.ops)
        rep["requests"] = len(r.requests)
        rep["acknowledged"] = len(c.acks)
        if a.fsck:
            rep["fsck"] = c.fsck(a.sessionctl, a.fsck)
        if a.json:
            with open(a.json, "w") as fh:
                json.dump(rep, fh, indent=1)
        print(f"check: {len(r.ops)} modelled calls, {len(r.requests)} requests "
              f"({len(c.acks)} acknowledged writes); self-check ok; "
              f"{rep['distinct_states_written']} distinct states written out")
        bad = 0
        for m in models:
            x = rep[m]
            print(f"check: {m}: {x['crash_points']} crash points ({x['exhaustive_points']} exhaustive), "
                  f"{x['states']} states, {x['violating_states']} violating {x['kinds']}"
                  + (f", damaged files named by {x['named_by']}" if x["named_by"] else ""))
            for v in x["violations"][:3]:
                print(f"    after #{v['crash_point']} ({v['after']}): {'; '.join(v['problems'][:3])}")
            bad += x["violating_states"]
        if a.fsck:
            f = rep["fsck"]
            print(f"check: fsck on {f['sampled']} states ({f['damaged']} with a torn or invalid file, "
                  f"{f['orphan_spares']} with a spare without its session): "
                  f"agrees on {f['agree']}, disagrees on {f['disagree']}")
            for nline in f["notes"]:
                print("    " + nline)
        return 1 if bad else 0
    finally:
        if not a.keep:
            c.cleanup()


if __name__ == "__main__":
    sys.exit(main())
