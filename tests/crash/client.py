#!/usr/bin/env python3
"""Workload client and data-dir snapshot for the power-loss checker.

  client.py snapshot DIR OUT.json       every folder and file under DIR
  client.py seed URL KEYS.json N        create N sessions (the "existing store")
  client.py workload URL LOG.jsonl [--keys KEYS.json] [--scale N]

The workload logs one JSON line per request: what was sent (op: create, save
or delete; key, data, conditional version), when it was sent and answered
(time.time(), the same clock as strace -ttt), the status and the version the
server acknowledged.
Every request is bounded by a timeout; the request count is fixed."""
import base64
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def snapshot(top, out):
    dirs, files = [], {}
    for root, dnames, fnames in os.walk(top):
        rel = os.path.relpath(root, top)
        if rel != ".":
            dirs.append(rel)
        for f in fnames:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                files[os.path.relpath(p, top)] = base64.b64encode(fh.read()).decode()
    with open(out, "w") as fh:
        json.dump({"dirs": sorted(dirs), "files": files}, fh)


class Client:
    def __init__(self, url, log):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.log = log
        self.lock = threading.Lock()
        self.tokens = {}
        self.n = 0

    def _post(self, path, body, headers):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request("POST", path, body=json.dumps(body),
                         headers={"Content-Type": "application/json", **headers})
            r = conn.getresponse()
            raw = r.read()
            try:
                ans = json.loads(raw) if raw else {}
            except ValueError:
                ans = {}
            return r.status, ans
        finally:
            conn.close()

    def _record(self, rec):
        with self.lock:
            self.log.write(json.dumps(rec) + "\n")
            self.log.flush()

    def _marker(self, what):
        with self.lock:
            self.n += 1
            n = self.n
        # Padding makes a document span more than one small write's worth,
        # so a torn write in the model cuts through the data.
        return {"w": f"{what}-{n}", "pad": "p" * 400 + str(n)}

    def create(self):
        data = self._marker("create")
        body = {"data": data, "meta": {"by": "crash-client"}}
        sent = time.time()
        st, ans = self._post("/api/instantiate", body, {})
        done = time.time()
        key = ans.get("key") if st == 201 else None
        if key and ans.get("token"):
            self.tokens[key] = ans["token"]
        self._record({"op": "create", "key": key, "data": data, "meta": body["meta"],
                      "sent": sent, "answered": done, "status": st,
                      "version": ans.get("version") if st == 201 else None})
        return key

    def save(self, key, version=None):
        data = self._marker("save")
        body = {"key": key, "data": data}
        if version is not None:
            body["version"] = version
        hdr = {"Authorization": "Bearer " + self.tokens[key]} if key in self.tokens else {}
        sent = time.time()
        st, ans = self._post("/api/save", body, hdr)
        done = time.time()
        self._record({"op": "save", "key": key, "data": data, "if_version": version,
                      "sent": sent, "answered": done, "status": st,
                      "version": ans.get("version") if st == 200 else None,
                      "current_version": ans.get("version") if st != 200 else None})
        return st, ans.get("version")

    def delete(self, key):
        hdr = {"Authorization": "Bearer " + self.tokens[key]} if key in self.tokens else {}
        sent = time.time()
        st, ans = self._post("/api/delete", {"key": key}, hdr)
        done = time.time()
        self._record({"op": "delete", "key": key, "sent": sent, "answered": done, "status": st})
        return st


def parallel(fns):
    ts = [threading.Thread(target=f) for f in fns]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)


def workload(url, logpath, keysfile, scale):
    with open(logpath, "w") as log:
        c = Client(url, log)
        seeded = []
        if keysfile:
            with open(keysfile) as fh:
                s = json.load(fh)
            seeded, c.tokens = s["keys"], s.get("tokens", {})
        for k in seeded:                      # a save over a file that was durable before
            c.save(k)
        keys = [c.create() for _ in range(2 + scale)]   # sequential creates
        keys = [k for k in keys if k]
        if len(keys) < 2:
            sys.exit("workload: creates failed")
        got = []
        parallel([lambda: got.append(c.create()) for _ in range(2)])   # concurrent creates
        for _ in range(2 * scale):            # sequential saves on one key
            c.save(keys[0])
        # concurrent saves: several on one key, and one each on others
        fns = [lambda: c.save(keys[1]) for _ in range(2 * scale)]
        fns += [lambda k=k: c.save(k) for k in keys[2:] + [g for g in got if g]]
        parallel(fns)
        # conditional saves: the first matches and succeeds, the second is stale (409)
        st, v = c.save(keys[0])
        c.save(keys[0], version=v)
        st2, _ = c.save(keys[0], version=v)
        if st2 != 409:
            sys.exit(f"workload: stale conditional save answered {st2}, want 409")
        # deletes of saved sessions (each has a spare): one alone, then two at once
        st = c.delete(keys[0])
        if st != 200:
            sys.exit(f"workload: delete answered {st}, want 200")
        parallel([lambda k=k: c.delete(k) for k in keys[1:3]])


def seed(url, out, n):
    with open(os.devnull, "w") as devnull:
        c = Client(url, devnull)
        keys = [c.create() for _ in range(n)]
    with open(out, "w") as fh:
        json.dump({"keys": [k for k in keys if k], "tokens": c.tokens}, fh)


def main(argv):
    if len(argv) == 4 and argv[1] == "snapshot":
        snapshot(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "seed":
        seed(argv[2], argv[3], int(argv[4]))
    elif len(argv) >= 4 and argv[1] == "workload":
        keys, scale, rest = None, 1, argv[4:]
        while rest:
            if rest[0] == "--keys":
                keys, rest = rest[1], rest[2:]
            elif rest[0] == "--scale":
                scale, rest = int(rest[1]), rest[2:]
            else:
                sys.exit(f"unknown option {rest[0]}")
        workload(argv[2], argv[3], keys, scale)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
