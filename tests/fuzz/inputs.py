#!/usr/bin/env python3
"""In-guest fuzzing of dm-remap's inputs against the live module.

Feeds the module random and mutated inputs built from its grammar, straight through
the device-mapper ioctls (no dmsetup in between, so the kernel sees every byte and the
errno comes back unchanged):

  - table lines: DM_TABLE_LOAD of one `remap` target, random start/length and a
    parameter string, into the inactive slot of a scratch device (never resumed);
  - messages: DM_TARGET_MSG to a live dm-remap target;
  - module parameters: writes to /sys/module/dm_remap/parameters/*.

Every input is judged:
  - refused: the errno must be EINVAL (a device that cannot be looked up may give the
    lookup's errno, with a "lookup failed" reason), the kernel must log a line saying
    why, and nothing may change: the live target's status line, table and event
    counter, the bytes of both spares' metadata areas, the module parameters;
  - accepted table: its canonical form (what `dmsetup table` would print) must load
    again and print the same; loading must not write to any device; the table is
    cleared;
  - accepted message or parameter: allowed to change state; the snapshot is taken
    again (after the background scan, if one started, is idle);
  - always: no oops, BUG, WARNING, KASAN/UBSAN report or lockdep splat in the kernel
    log.
At the end the live target's data must read back as it was written before the run
(messages move blocks to the spare and back; nothing may be lost).

    inputs.py --inputs N --seed S --live NAME --scratch NAME --main DEV --spare DEV
              --spare-img FILE --main2 DEV --spare2 DEV --spare2-img FILE
              --blocks B --summary FILE

Prints one line per failure (up to 20 of each kind) and writes a JSON summary.
"""
import argparse
import errno
import fcntl
import json
import os
import random
import re
import struct
import sys
import time

# --- device-mapper ioctl interface (include/uapi/linux/dm-ioctl.h) ---------------
DM_FMT = "<3IIIIiIIIQ128s129s7s"
DM_SIZE = struct.calcsize(DM_FMT)
assert DM_SIZE == 312
SPEC_FMT = "<QQiI16s"
SPEC_SIZE = struct.calcsize(SPEC_FMT)
DM_VERSION = (4, 0, 0)
DM_DEV_CREATE, DM_DEV_REMOVE, DM_DEV_STATUS = 3, 4, 7
DM_TABLE_LOAD, DM_TABLE_CLEAR, DM_TABLE_STATUS, DM_TARGET_MSG = 9, 10, 12, 14
DM_STATUS_TABLE_FLAG = 1 << 4
DM_BUFFER_FULL_FLAG = 1 << 8
DM_QUERY_INACTIVE_TABLE_FLAG = 1 << 12
DM_DATA_OUT_FLAG = 1 << 16
BUF = 65536


def _ioc(nr):
    return (3 << 30) | (DM_SIZE << 16) | (0xFD << 8) | nr


class Dm:
    def __init__(self):
        self.fd = os.open("/dev/mapper/control", os.O_RDWR)

    def call(self, nr, name, flags=0, payload=b"", target_count=0):
        """Issues one ioctl; returns (header fields, whole buffer). Raises OSError."""
        size = max(BUF, DM_SIZE + len(payload) + 1)
        hdr = struct.pack(DM_FMT, *DM_VERSION, size, DM_SIZE, target_count, 0, flags,
                          0, 0, 0, name.encode(), b"", b"")
        buf = bytearray(hdr + payload + bytes(size - DM_SIZE - len(payload)))
        fcntl.ioctl(self.fd, _ioc(nr), buf, True)
        f = struct.unpack_from(DM_FMT, buf)
        return {"data_size": f[3], "data_start": f[4], "target_count": f[5],
                "flags": f[7], "event_nr": f[8]}, buf

    def create(self, name):
        self.call(DM_DEV_CREATE, name)

    def remove(self, name):
        self.call(DM_DEV_REMOVE, name)

    def load(self, name, start, length, params):
        spec = struct.pack(SPEC_FMT, start, length, 0, 0, b"remap")
        self.call(DM_TABLE_LOAD, name, payload=spec + params + b"\0", target_count=1)

    def clear(self, name):
        self.call(DM_TABLE_CLEAR, name)

    def event_nr(self, name):
        return self.call(DM_DEV_STATUS, name)[0]["event_nr"]

    def table_status(self, name, flags):
        """The first target's (start, length, type, params), or None without a table."""
        h, buf = self.call(DM_TABLE_STATUS, name, flags=flags)
        if h["flags"] & DM_BUFFER_FULL_FLAG:
            raise RuntimeError("status buffer too small")
        if h["target_count"] == 0:
            return None
        off = h["data_start"]
        start, length, _, _, ttype = struct.unpack_from(SPEC_FMT, buf, off)
        text = bytes(buf[off + SPEC_SIZE:]).split(b"\0", 1)[0]
        return start, length, ttype.rstrip(b"\0"), text

    def message(self, name, msg):
        """Sends `msg` to sector 0; returns the answer (bytes) or b""."""
        h, buf = self.call(DM_TARGET_MSG, name, payload=struct.pack("<Q", 0) + msg + b"\0")
        if h["flags"] & DM_DATA_OUT_FLAG:
            return bytes(buf[h["data_start"]:]).split(b"\0", 1)[0]
        return b""


# --- kernel log -----------------------------------------------------------------
SPLAT = re.compile(r"BUG:|WARNING:|Oops|Call Trace|general protection|kernel BUG|"
                   r"KASAN|UBSAN|possible recursive locking|circular locking|"
                   r"suspicious RCU usage|INFO: task .* blocked|unreferenced object")


class Kmsg:
    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def new_lines(self):
        out = []
        while True:
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                return out
            except BrokenPipeError:   # overwritten records: go on from the oldest left
                continue
            head, _, text = rec.decode("utf-8", "replace").partition(";")
            out.append(text.split("\n", 1)[0])


# --- the grammar ----------------------------------------------------------------
OPT_KEYS = ["block_size", "read_retries", "format_spare", "uuid", "max_remap_rate",
            "scan_interval", "scan_rate", "proactive_remap", "proactive_reserve",
            "proactive_region"]
NUMBERS = ["0", "1", "2", "7", "16", "17", "64", "63", "512", "4096", "3000", "65536",
           "131072", "1000000", "1000001", "31536000", "31536001", "4194304", "4194305",
           "18446744073709551615", "18446744073709551616", "99999999999999999999999",
           "-1", "-0", "+1", "0x10", "010", "1e3", "4k", " ", "", "00000000000000000004096",
           "9223372036854775807", "9223372036854775808", "4294967296"]
VALUES = {
    "block_size": ["512", "1024", "4096", "8192", "65536"],
    "read_retries": ["0", "1", "3", "16"],
    "format_spare": [],
    "uuid": ["UUID", "0123456789abcdef0123456789abcdef",
             "01234567-89ab-cdef-0123-456789abcdef", "00000000000000000000000000000000",
             "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcde",
             "0123456789abcdef0123456789abcdeg", "01234567-89ab-cdef-0123456789abcdef"],
    "max_remap_rate": ["0", "5", "1024", "1000000"],
    "scan_interval": ["0", "60", "31536000"],
    "scan_rate": ["64", "1024", "65536", "4194304"],
    "proactive_remap": ["on", "off", "ON", "Off", "yes", "1", ""],
    "proactive_reserve": ["0", "25", "100", "101"],
    "proactive_region": ["0", "4", "64", "65"],
}
VERBS = ["help", "stats", "clear_stats", "remap", "unremap", "query", "list", "clear",
         "clear_failed", "scan", "HELP", "Query", "lis", "remapp", "scan_start", "frob",
         "status", "unremap\t", "query\n", "health", "alerts", "samples", "spare_list",
         "spare_stats", "spare_remove", "spare_remove"]
WORDS = ["confirm", "start", "stop", "status", "CONFIRM", "Start", "now", "all", "x",
         "7:0", "0:0", ":", "254:", "4294967296:1",
         "\\", "\\ ", "'", "\"", "\t", "\n", "é", "\xff", "%s%n", "0 0"]
PARAMS = ["scan_rate_min_kib", "scan_rate_max_kib", "scan_interval_s",
          "proactive_reserve_pct", "proactive_region_blocks"]
BYTES = b" \t\n\\\"'0123456789abcdefxyz-+:,./\x01\x7f\x80\xc3\xa9\xff"


class Gen:
    def __init__(self, rnd, a):
        self.r = rnd
        self.a = a
        self.devs = [a.main, a.spare, a.main2, a.spare2, a.main2_mm, a.spare2_mm,
                     "/dev/nonexistent", "/dev/null", "0:0", "7:99999", "99999:0",
                     "-1:0", "7:", ":", "", "MAIN", "/dev/mapper/control",
                     "/dev/mapper/" + a.live]
        self.uuid = a.spare2_uuid

    def number(self):
        r = self.r
        if r.random() < 0.5:
            return r.choice(NUMBERS)
        return str(r.choice([r.randrange(0, 64), r.randrange(0, 1 << 20),
                             r.randrange(0, self.a.blocks + 64), r.getrandbits(64),
                             (1 << r.randrange(0, 65)) - r.randrange(0, 2)]))

    def value(self, key):
        r = self.r
        v = VALUES.get(key, [])
        if v and r.random() < 0.7:
            x = r.choice(v)
            return self.uuid if x == "UUID" else x
        return self.number() if r.random() < 0.8 else r.choice(WORDS)

    def mutate(self, s):
        """A few byte-level and token-level edits of `s` (bytes)."""
        r = self.r
        for _ in range(r.randrange(1, 4)):
            toks = s.split(b" ")
            k = r.randrange(8)
            i = r.randrange(len(toks))
            if k == 0 and len(toks) > 1:
                del toks[i]
            elif k == 1:
                toks.insert(i, toks[r.randrange(len(toks))])
            elif k == 2:
                j = r.randrange(len(toks))
                toks[i], toks[j] = toks[j], toks[i]
            elif k == 3:
                toks[i] = r.choice(OPT_KEYS + WORDS + NUMBERS).encode()
            s = b" ".join(toks)
            if k == 4 and s:
                p = r.randrange(len(s))
                s = s[:p] + bytes([r.choice(BYTES)]) + s[p + 1:]
            elif k == 5:
                p = r.randrange(len(s) + 1)
                s = s[:p] + bytes([r.choice(BYTES)]) + s[p:]
            elif k == 6 and s:
                p = r.randrange(len(s))
                s = s[:p] + s[p + 1:]
            elif k == 7 and s:
                s = s[:r.randrange(len(s))]
        return s

    def table(self):
        """(start, length in sectors, params bytes)."""
        r, a = self.r, self.a
        length = a.sectors
        if r.random() < 0.2:
            length = r.choice([0, 1, 8, a.sectors - 8, a.sectors + 8, a.sectors * 2,
                               a.sectors - 1, 1 << 63, (1 << 64) - 1, r.randrange(1, 1 << 20)])
        start = 0 if r.random() < 0.95 else r.choice([1, 8, 1 << 40])
        if r.random() < 0.5:
            main = a.main2 if r.random() < 0.8 else r.choice(self.devs)
            spare = a.spare2 if r.random() < 0.8 else r.choice(self.devs)
            words = []
            for _ in range(r.choice([0, 0, 1, 1, 2, 3, 5, 9])):
                k = r.choice(OPT_KEYS) if r.random() < 0.9 else r.choice(WORDS)
                words.append(k)
                if k != "format_spare" and r.random() < 0.95:
                    words.append(self.value(k))
            n = len(words)
            if r.random() < 0.1:
                n = self.number()
            line = " ".join([main, spare] + ([str(n)] + words if words or r.random() < 0.3 else []))
            return start, length, line.encode()
        # Mutation of a line that loads.
        good = [f"{a.main2} {a.spare2}", f"{a.main2_mm} {a.spare2_mm} 2 uuid {self.uuid}",
                f"{a.main2} {a.spare2} 4 block_size 4096 read_retries 3",
                f"{a.main2} {a.spare2} 6 max_remap_rate 0 scan_interval 60 scan_rate 1024",
                f"{a.main2} {a.spare2} 2 proactive_remap off"]
        return start, length, self.mutate(r.choice(good).encode())

    def message(self):
        r = self.r
        if r.random() < 0.6:
            words = [r.choice(VERBS)]
            for _ in range(r.choice([0, 1, 1, 1, 2, 3])):
                words.append(self.number() if r.random() < 0.6 else r.choice(WORDS))
            m = " ".join(words).encode()
        else:
            b = self.a.blocks
            m = self.mutate(r.choice([b"help", b"stats", b"query 5", b"list", b"list 100",
                                      f"query {b - 1}".encode(), b"scan status",
                                      b"clear confirm", b"remap 12", b"unremap 12",
                                      f"remap {b}".encode(), b"clear_failed"]))
            if r.random() < 0.02:
                m = m * r.randrange(2, 200)
        # A leading '@' is dm core's (dm-stats), not the target's.
        return m.lstrip(b" \t\n").replace(b"@", b"a", 1) if m.lstrip().startswith(b"@") else m

    def param(self):
        r = self.r
        name = r.choice(PARAMS)
        if r.random() < 0.6:
            v = self.number()
        else:
            v = self.mutate(r.choice([b"64", b"1024", b"4194304", b"0", b"60"])).decode(
                "latin-1")
        if r.random() < 0.5 or not v:   # (an empty write never reaches the module)
            v += "\n"
        return name, v.encode("latin-1")


# --- state snapshots --------------------------------------------------------------
# The five copies' extents start at these sectors; a copy here (a handful of remapped
# blocks, a short log) is a few KiB, and a commit writes only the copy's own bytes, so
# the first 128 KiB of each extent hold everything the module writes there.
COPY_SECTORS = (0, 1024, 2048, 4096, 8192)
COPY_BYTES = 128 * 1024


def read_meta(path):
    with open(path, "rb") as f:
        return b"".join(os.pread(f.fileno(), COPY_BYTES, s * 512) for s in COPY_SECTORS)


def param_values():
    return {p: open(f"/sys/module/dm_remap/parameters/{p}").read() for p in PARAMS}


class Run:
    def __init__(self, a):
        self.a = a
        self.dm = Dm()
        self.kmsg = Kmsg()
        self.counts = {"inputs": 0, "tables": 0, "messages": 0, "params": 0,
                       "tables_accepted": 0, "messages_accepted": 0, "params_accepted": 0,
                       "refused": 0}
        self.errnos = {}
        self.failures = {}
        self.splats = []

    def fail(self, kind, what):
        n = self.failures.get(kind, 0)
        self.failures[kind] = n + 1
        if n < 20:
            print(f"# FAIL {kind}: {what!r}", flush=True)

    def snapshot(self, io_through_live=False):
        a, dm = self.a, self.dm
        status = dm.table_status(a.live, 0)
        if status is not None:
            # The prediction fields (25-28: health score, alert, time to failure,
            # samples) move with the sampling clock, not with inputs.
            f = status[3].split(b" ")
            status = status[:3] + (b" ".join(f[:24]),)
        if io_through_live and status is not None:
            # An input that names the live target as a device makes the kernel read
            # through it (the metadata check of a spare, an identity probe): its I/O
            # counters (reads .. write_errors, fields 3-9) move, nothing else may.
            f = status[3].split(b" ")
            status = status[:3] + (b" ".join(f[:2] + [b"-"] * 7 + f[9:]),)
        return {
            "status": status,
            "table": dm.table_status(a.live, DM_STATUS_TABLE_FLAG),
            "event": dm.event_nr(a.live),
            "scratch": dm.table_status(a.scratch, DM_QUERY_INACTIVE_TABLE_FLAG | DM_STATUS_TABLE_FLAG),
            "meta": read_meta(a.spare_img),
            "meta2": read_meta(a.spare2_img),
            "params": param_values(),
        }

    def diff(self, before, after):
        return [k for k in before if before[k] != after[k]]

    def log_lines(self):
        lines = self.kmsg.new_lines()
        for l in lines:
            if SPLAT.search(l):
                self.splats.append(l)
                self.fail("splat", l)
        return lines

    def wait_idle(self):
        """Waits for the live target's scan to be idle (a `scan start` may run one)."""
        for _ in range(600):
            st = self.dm.message(self.a.live, b"scan status")
            if b"state=idle" in st or b"state=stopped" in st:
                return
            time.sleep(0.1)
        self.fail("scan-never-idle", st)

    def judge_refusal(self, kind, inp, e, before, lines, io_through_live=False):
        self.counts["refused"] += 1
        name = errno.errorcode.get(e.errno, str(e.errno))
        self.errnos[name] = self.errnos.get(name, 0) + 1
        dm_lines = [l for l in lines if "device-mapper:" in l or "dm_remap" in l or "dm-remap" in l]
        # EINVAL, but for a device that cannot be looked up (the lookup's errno) and a
        # well-formed message about a block in the wrong state (the admin guide's
        # ENOENT, EEXIST and EBUSY, with a reason that says "refused: the block ...").
        lookup = kind == "table" and any("lookup failed" in l for l in dm_lines)
        # A device another dm-remap target holds: EBUSY (admin guide, "held").
        held = kind == "table" and e.errno == errno.EBUSY and any(
            "already held by another dm-remap target" in l for l in dm_lines)
        state = kind == "message" and e.errno in (errno.ENOENT, errno.EEXIST, errno.EBUSY) \
            and any("refused: the block" in l or "refused: sectors of the block" in l
                    for l in dm_lines)
        # spare_remove of a spare whose blocks do not fit the others: ENOSPC (admin
        # guide), with a reason that says so.
        state |= kind == "message" and e.errno == errno.ENOSPC and any(
            "do not fit the" in l for l in dm_lines)
        if e.errno != errno.EINVAL and not lookup and not held and not state:
            self.fail(f"{kind}-errno-{name}", (inp, dm_lines[-1:]))
        if not dm_lines:
            self.fail(f"{kind}-no-log-line", inp)
        changed = self.diff(before, self.snapshot(io_through_live))
        if changed:
            self.fail(f"{kind}-refusal-changed-{'+'.join(changed)}", inp)

    def one_table(self, inp):
        a, dm = self.a, self.dm
        start, length, params = inp
        live = a.live.encode() in params
        before = self.snapshot(live)
        self.counts["tables"] += 1
        try:
            dm.load(a.scratch, start, length, params)
        except OSError as e:
            self.judge_refusal("table", inp, e, before, self.log_lines(), live)
            return
        self.counts["tables_accepted"] += 1
        self.log_lines()
        t = dm.table_status(a.scratch, DM_QUERY_INACTIVE_TABLE_FLAG | DM_STATUS_TABLE_FLAG)
        dm.clear(a.scratch)
        # Loading (without resume) writes nothing, and the printed form loads as itself.
        after = self.snapshot(live)
        changed = [k for k in self.diff(before, after) if k != "scratch"]
        if changed:
            self.fail(f"table-load-changed-{'+'.join(changed)}", inp)
        if t is None:
            self.fail("table-accepted-not-shown", inp)
            return
        # A table with format_spare over foreign data prints the UUID its first resume
        # will format the spare with (format_spare itself is never printed): until then
        # the printed line does not load (admin guide). Loads here are never resumed.
        if b"format_spare" in params:
            return
        try:
            dm.load(a.scratch, t[0], t[1], t[3])
            t2 = dm.table_status(a.scratch, DM_QUERY_INACTIVE_TABLE_FLAG | DM_STATUS_TABLE_FLAG)
            dm.clear(a.scratch)
            if t2 != t:
                self.fail("table-canonical-not-stable", (inp, t, t2))
        except OSError as e:
            self.fail("table-canonical-refused", (inp, t, e.errno, self.log_lines()[-1:]))
        self.log_lines()

    def one_message(self, msg):
        a, dm = self.a, self.dm
        before = self.snapshot()
        self.counts["messages"] += 1
        try:
            dm.message(a.live, msg)
        except OSError as e:
            self.judge_refusal("message", msg, e, before, self.log_lines())
            return
        self.counts["messages_accepted"] += 1
        self.log_lines()
        self.wait_idle()

    def one_param(self, inp):
        name, val = inp
        before = self.snapshot()
        self.counts["params"] += 1
        path = f"/sys/module/dm_remap/parameters/{name}"
        try:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, val)
            finally:
                os.close(fd)
        except OSError as e:
            self.judge_refusal("param", inp, e, before, self.log_lines())
            return
        self.counts["params_accepted"] += 1
        self.log_lines()
        got = open(path).read().strip()
        try:
            want = str(int(val.decode("ascii").strip(), 10))
        except (UnicodeDecodeError, ValueError):
            want = None
        if got != want:
            self.fail("param-accepted-reads-back-otherwise", (inp, got))
        with open(path, "w") as f:   # back to what it was
            f.write(before["params"][name])

    def run(self):
        a = self.a
        gen = Gen(random.Random(a.seed), a)
        self.log_lines()
        t0 = time.time()
        for i in range(a.inputs):
            x = gen.r.random()
            if x < 0.45:
                self.one_table(gen.table())
            elif x < 0.9:
                self.one_message(gen.message())
            else:
                self.one_param(gen.param())
            self.counts["inputs"] += 1
            if (i + 1) % 1000 == 0:
                print(f"# {i + 1} inputs, {time.time() - t0:.0f} s, "
                      f"{sum(self.failures.values())} failures", flush=True)
        self.counts["seconds"] = round(time.time() - t0)
        return {"counts": self.counts, "errnos": self.errnos, "failures": self.failures,
                "splats": self.splats[:20]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--inputs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    for o in ("live", "scratch", "main", "spare", "spare-img", "main2", "spare2",
              "spare2-img", "spare2-uuid", "summary"):
        p.add_argument("--" + o, required=True)
    p.add_argument("--blocks", type=int, required=True)
    a = p.parse_args()
    a.sectors = a.blocks * 8
    a.main2_mm = f"{os.major(os.stat(a.main2).st_rdev)}:{os.minor(os.stat(a.main2).st_rdev)}"
    a.spare2_mm = f"{os.major(os.stat(a.spare2).st_rdev)}:{os.minor(os.stat(a.spare2).st_rdev)}"
    run = Run(a)
    run.dm.create(a.scratch)
    try:
        summary = run.run()
    finally:
        try:
            run.dm.clear(a.scratch)
        except OSError:
            pass
        run.dm.remove(a.scratch)
    with open(a.summary, "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    print("# " + json.dumps(summary["counts"], sort_keys=True))
    print("# errnos of refusals: " + json.dumps(summary["errnos"], sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
