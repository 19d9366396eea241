"""Socket handed over on fd 0 (systemd socket activation, spawn-fcgi): a
sessiond stopped with SIGTERM must leave the socket listening, so the next
sessiond started on the same socket serves it. Prints 'ok'/'FAIL' lines."""
import os, socket, subprocess, sys, tempfile, time

binary, tmp = sys.argv[1], tempfile.mkdtemp(prefix="sessiond-handoff.")
path = os.path.join(tmp, "s.sock")
lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
lst.bind(path)
lst.listen(16)
fails = 0

def check(name, cond):
    global fails
    print(("ok   " if cond else "FAIL ") + name)
    fails += 0 if cond else 1

def start():
    return subprocess.Popen([binary, "--data-dir", os.path.join(tmp, "data"), "--threads", "4"],
                            stdin=lst.fileno(), stderr=open(os.path.join(tmp, "log"), "a"))

def fcgi_health():
    # A minimal FastCGI GET /api/health over the socket.
    def rec(t, body, rid=1):
        return bytes([1, t, 0, rid, len(body) >> 8, len(body) & 255, 0, 0]) + body
    def pair(k, v):
        return bytes([len(k), len(v)]) + k + v
    params = pair(b"REQUEST_METHOD", b"GET") + pair(b"DOCUMENT_URI", b"/api/health")
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect(path)
    c.sendall(rec(1, bytes([0, 1, 0, 0, 0, 0, 0, 0])) + rec(4, params) + rec(4, b"") + rec(5, b""))
    data = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    c.close()
    return b"Status: 200" in data

procs = []
try:
    p = start()
    procs.append(p)
    time.sleep(0.5)
    check("first sessiond serves the handed-over socket", fcgi_health())
    t0 = time.monotonic()
    p.terminate()
    rc = p.wait(timeout=10)
    took = time.monotonic() - t0
    check("SIGTERM: exit 0 (%d) within 2 s (%.2f s)" % (rc, took), rc == 0 and took < 2)
    p = start()
    procs.append(p)
    time.sleep(0.5)
    try:
        served = fcgi_health()
    except OSError as e:
        print("     (%s)" % e)
        served = False
    check("the socket still listens: a second sessiond serves it", served)
finally:
    for q in procs:
        if q.poll() is None:
            q.terminate()
            try:
                q.wait(timeout=10)
            except subprocess.TimeoutExpired:
                q.kill()
print("%d passed, %d failed" % (3 - fails, fails))
sys.exit(1 if fails else 0)
